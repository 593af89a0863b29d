package contract

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Prefix is the prefix of every label and annotation nodereboot owns.
const Prefix = "nodereboot.io/"

// DefaultConditionType is the node condition the detector writes and the
// controller reads by default.
const DefaultConditionType = "RebootRequired"

// Labels and annotations. Each has exactly one writer, named in its comment.
const (
	// LabelDisabled=true opts a node out. Writer: a person.
	LabelDisabled = Prefix + "disabled"

	// AnnotationRebootRequested asks for a reboot without the condition; any
	// value. Writer: a person; removed by the controller when the reboot is done.
	AnnotationRebootRequested = Prefix + "reboot-requested"

	// AnnotationState is where the node is in the controller's pipeline (a
	// State). Absent means idle. Writer: controller.
	AnnotationState = Prefix + "state"
	// AnnotationStateSince is the RFC 3339 time of the last state change;
	// timeouts count from it. Writer: controller.
	AnnotationStateSince = Prefix + "state-since"
	// AnnotationStateReason says why a node is in its state (for Failed: what
	// failed). Writer: controller.
	AnnotationStateReason = Prefix + "state-reason"
	// AnnotationCordonedByUs is present only when the controller made the node
	// unschedulable, so it never uncordons an administrator's cordon. Writer:
	// controller.
	AnnotationCordonedByUs = Prefix + "cordoned-by-us"
	// AnnotationRebootAuthorized holds the boot ID that may reboot. The
	// detector reboots only when it equals its own current boot ID. Writer:
	// controller.
	AnnotationRebootAuthorized = Prefix + "reboot-authorized"
	// AnnotationLastReboot is the RFC 3339 time of the last completed reboot
	// (for --min-reboot-interval). Writer: controller.
	AnnotationLastReboot = Prefix + "last-reboot"
	// AnnotationNotBefore is an RFC 3339 time before which the controller will
	// not take the node again (after a failed drain). Writer: controller.
	AnnotationNotBefore = Prefix + "not-before"

	// AnnotationRebooting is the boot ID the detector was running when it
	// issued the reboot. Writer: detector (it also removes it after boot).
	AnnotationRebooting = Prefix + "rebooting"

	// AnnotationLabelsBefore holds, as a JSON object, the values the node's
	// labels had before the controller changed them at the take
	// (--pre-reboot-node-labels set, --post-reboot-node-labels removed;
	// null: the label was absent), so that it restores them when the node
	// leaves the pipeline. Writer: controller.
	AnnotationLabelsBefore = Prefix + "labels-before-reboot"
	// AnnotationScaleDownDisabledByUs is present only when the controller
	// added AnnotationScaleDownDisabled (--scale-down-protection): "true"
	// while the node is in the pipeline, then the RFC 3339 time at which
	// the controller removes both. Writer: controller.
	AnnotationScaleDownDisabledByUs = Prefix + "scale-down-disabled-by-us"
	// AnnotationDoNotDisruptByUs is present ("true") only when the
	// controller added AnnotationDoNotDisrupt (--karpenter-protection), from
	// the take until the node leaves the pipeline. Writer: controller.
	AnnotationDoNotDisruptByUs = Prefix + "do-not-disrupt-by-us"

	// AnnotationTerm is the leader term (of the slot record) in which the
	// controller last fenced the node: a new leader writes it on every node
	// holding a slot before it decides anything, so that a write of a
	// deposed leader still in flight (guarded by the node's older
	// resourceVersion) is refused by the API server. On the slot record it
	// is the current term. Writer: controller.
	AnnotationTerm = Prefix + "term"
	// AnnotationHolder, on the slot record, is the identity of the leader
	// that wrote it last. Writer: controller.
	AnnotationHolder = Prefix + "holder"

	// AnnotationPaused="true" on the ConfigMap ConfigMapName (in the
	// controller's namespace) pauses the controller: no new node is taken;
	// nodes in the pipeline finish. Writer: a person (kubectl nodereboot
	// pause / resume).
	AnnotationPaused = Prefix + "paused"
	// AnnotationPausedReason says why, for people (optional). Writer: a
	// person.
	AnnotationPausedReason = Prefix + "paused-reason"
)

// ConfigMapName is the ConfigMap, in the controller's namespace, that
// carries AnnotationPaused.
const ConfigMapName = "nodereboot-config"

// SlotsConfigMapName is the slot record: the ConfigMap, in the controller's
// namespace, whose data names the nodes holding a slot (key: node name;
// value: the term and time of the take, "<term>/<RFC 3339 time>"). The
// controller adds a node before it takes it and removes it after the node
// has left the pipeline, always with a resourceVersion precondition: it is
// the controller's own record of which nodes it put out, so a state
// annotation on a node the record does not name was not written by the
// controller. Writer: controller.
const SlotsConfigMapName = "nodereboot-slots"

// ControllerOwned lists the node annotations only the controller writes
// (docs/node-contract.md). Anybody who may patch a Node may remove
// AnnotationState (the abort); nobody else may add or change any of them.
var ControllerOwned = []string{
	AnnotationState, AnnotationStateSince, AnnotationStateReason,
	AnnotationCordonedByUs, AnnotationRebootAuthorized, AnnotationNotBefore,
	AnnotationLastReboot, AnnotationLabelsBefore, AnnotationScaleDownDisabledByUs,
	AnnotationTerm, AnnotationDoNotDisruptByUs,
}

// AnnotationScaleDownDisabled is the Cluster Autoscaler's annotation that
// keeps it from removing a node; the controller sets it to "true" while it
// reboots a node (--scale-down-protection).
const AnnotationScaleDownDisabled = "cluster-autoscaler.kubernetes.io/scale-down-disabled"

// AnnotationDoNotDisrupt is Karpenter's annotation that keeps it from
// disrupting a node (consolidation, drift, expiry); the controller sets it
// to "true" while it reboots a node that does not carry it
// (--karpenter-protection).
const AnnotationDoNotDisrupt = "karpenter.sh/do-not-disrupt"

// State is the value of AnnotationState.
type State string

// The states of a node in the controller's pipeline. A node in any of them
// counts against --max-concurrent: it is "out".
const (
	// StateIdle is the absence of the annotation: nothing in progress.
	StateIdle State = ""
	// StateDraining: the node is cordoned and its pods are being evicted.
	StateDraining State = "Draining"
	// StateAuthorized: reboot-authorized is set; waiting for a new boot ID.
	StateAuthorized State = "Authorized"
	// StateRebooted: a new boot ID was seen and the node is Ready; it soaks
	// for --post-reboot-soak before it is uncordoned.
	StateRebooted State = "Rebooted"
	// StateFailed: the pipeline stopped (reboot timeout, drain failure with
	// --on-drain-failure=hold). The node keeps its slot until an operator
	// removes the state annotation.
	StateFailed State = "Failed"
)

// ParseState validates an AnnotationState value.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StateIdle, StateDraining, StateAuthorized, StateRebooted, StateFailed:
		return st, nil
	default:
		return "", fmt.Errorf("unknown state %q (want one of %s, %s, %s, %s)", s,
			StateDraining, StateAuthorized, StateRebooted, StateFailed)
	}
}

// Active reports whether a node in this state counts against --max-concurrent.
func (s State) Active() bool { return s != StateIdle }

// FormatTime formats t for the time annotations (RFC 3339, UTC, seconds).
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// errNoTime is ParseTime's error for an empty or missing annotation,
// made once: the controller's admission pass reads the time annotations
// of every node, and most nodes have none.
var errNoTime = errors.New(`invalid time "": want RFC 3339, for example 2026-11-25T18:00:00Z`)

// ParseTime parses a time annotation written by FormatTime.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errNoTime
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q: want RFC 3339, for example 2026-11-25T18:00:00Z", s)
	}
	return t, nil
}

// AuthorizedReasonPrefix starts the state-reason of an Authorized node; the
// authorized boot ID follows. It is the controller's second record of the
// authorization: the controller restores a changed reboot-authorized from
// it, and the detector reboots only when both name its current boot.
const AuthorizedReasonPrefix = "authorized boot ID "

// AuthorizedReason is the state-reason the controller writes when it
// authorizes the reboot of boot.
func AuthorizedReason(boot string) string { return AuthorizedReasonPrefix + boot }

// AuthorizedBoot returns the boot ID recorded in an Authorized node's
// state-reason, if it holds one.
func AuthorizedBoot(stateReason string) (string, bool) {
	rec, ok := strings.CutPrefix(stateReason, AuthorizedReasonPrefix)
	return rec, ok && rec != ""
}

// RequestTime is when a reboot-requested annotation asks for the reboot, for
// the order of the queue: the RFC 3339 time its value ends with (as
// `kubectl nodereboot request` writes "kubectl-nodereboot <time>"), never
// later than now; the zero time when the value names none (such a request
// goes before every condition, ties broken by the node's name). It depends
// on the Node alone, so every leader orders the queue the same way.
func RequestTime(value string, now time.Time) time.Time {
	fields := strings.Fields(value)
	if len(fields) == 0 {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, fields[len(fields)-1])
	if err != nil {
		return time.Time{}
	}
	if t.After(now) {
		return now
	}
	return t
}

// conditionBootPrefix and conditionBootSuffix frame the boot ID the
// detector names at the end of its condition's message.
const (
	conditionBootPrefix = " (boot ID "
	conditionBootSuffix = ")"
)

// ConditionMessage is the detector's condition message: the observation,
// then the boot it was observed in. The controller reads the boot back
// (ConditionBoot) to tell, exactly and from the Node alone, a condition
// about the current boot from one left over from before a reboot.
func ConditionMessage(observation, boot string) string {
	if boot == "" {
		return observation
	}
	return observation + conditionBootPrefix + boot + conditionBootSuffix
}

// ConditionBoot returns the boot ID a condition message ends with, if it
// names one (messages of other writers, such as node-problem-detector, do
// not).
func ConditionBoot(message string) (string, bool) {
	rest, ok := strings.CutSuffix(message, conditionBootSuffix)
	if !ok {
		return "", false
	}
	i := strings.LastIndex(rest, conditionBootPrefix)
	if i < 0 {
		return "", false
	}
	boot := rest[i+len(conditionBootPrefix):]
	if boot == "" || strings.ContainsAny(boot, " ()") {
		return "", false
	}
	return boot, true
}

// Event reasons, as `kubectl get events --field-selector reason=...` finds them.
const (
	// Detector.
	ReasonRebootRequired     = "RebootRequired"
	ReasonRebootNotRequired  = "RebootNotRequired"
	ReasonRebootUnknown      = "RebootRequiredUnknown"
	ReasonSentinelUnreadable = "SentinelUnreadable"
	ReasonRebooting          = "Rebooting"
	ReasonRebootFailed       = "RebootFailed"
	ReasonRebooted           = "Rebooted"
	ReasonInvalidAnnotation  = "InvalidAnnotation"

	// Controller.
	ReasonRebootQueued     = "RebootQueued"
	ReasonCordoned         = "Cordoned"
	ReasonDraining         = "Draining"
	ReasonDrained          = "Drained"
	ReasonRebootAuthorized = "RebootAuthorized"
	ReasonUncordoned       = "Uncordoned"
	ReasonRebootDone       = "RebootCompleted"
	ReasonEvictionBlocked  = "EvictionBlocked"
	ReasonDrainFailed      = "DrainFailed"
	ReasonRebootTimeout    = "RebootTimeout"
	ReasonRebootBlocked    = "RebootBlocked"
	ReasonRebootTooSoon    = "RebootRequiredAgain"
	ReasonDryRun           = "DryRun"
	// ReasonWaitingForRelease: a rebooted node waits for the release gate
	// (Normal, once per change of what it waits for).
	ReasonWaitingForRelease = "WaitingForRelease"
	// ReasonReleaseTimeout: a rebooted node did not pass the release gate
	// within --release-timeout (Warning; also the Failed state-reason).
	ReasonReleaseTimeout = "ReleaseTimeout"
)

// Component names: the event source and the user agent of each binary, so
// that events and the API server's request metrics tell them apart.
const (
	DetectorComponent   = "nodereboot-detector"
	ControllerComponent = "nodereboot-controller"
)
