package notify

import (
	"time"

	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

// Step is the pipeline step a notification is about.
type Step string

// The steps that are notified.
const (
	// StepDrain: the node was cordoned and its drain starts.
	StepDrain Step = "drain"
	// StepReboot: the reboot was authorized.
	StepReboot Step = "reboot"
	// StepUncordon: the reboot completed and the node is back in service.
	StepUncordon Step = "uncordon"
	// StepFailure: the pipeline failed or gave the node back (drain
	// failure, reboot timeout, a reboot blocked past the drain timeout).
	StepFailure Step = "failure"
)

// Steps lists every step.
var Steps = []Step{StepDrain, StepReboot, StepUncordon, StepFailure}

// Event is one notification: what happened to which node, and why.
type Event struct {
	Step Step
	Node string
	// Reason is the event reason (e.g. Draining, RebootAuthorized,
	// RebootCompleted, DrainFailed).
	Reason string
	// Message explains it for people.
	Message string
	Time    time.Time
}

// Notifier is told about the steps of every node. Notify must not block:
// notifications never hold up a rollout.
type Notifier interface {
	Notify(Event)
}

// clean returns the event with its text fields cleaned by sanitize (on one
// line, control characters escaped, the message capped at
// sanitize.MaxMessage): a message may quote a Prometheus server's answer or
// a package list. The templates are the operator's and are not cleaned: a
// newline in a template stays.
func (e Event) clean() Event {
	e.Node = sanitize.Line(e.Node, sanitize.MaxMessage)
	e.Reason = sanitize.Line(e.Reason, sanitize.MaxMessage)
	e.Message = sanitize.Message(e.Message)
	return e
}
