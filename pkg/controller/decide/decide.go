package decide

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/gates"
)

// DrainFailurePolicy is what happens to a node whose drain did not finish
// within the drain timeout (--on-drain-failure).
type DrainFailurePolicy string

// The drain failure policies.
const (
	// DrainFailureUncordon gives the node back: uncordon it (if we cordoned
	// it), clear its state and do not take it again before a backoff.
	DrainFailureUncordon DrainFailurePolicy = "uncordon"
	// DrainFailureHold marks the node Failed; it stays cordoned and keeps its
	// slot until an operator clears it.
	DrainFailureHold DrainFailurePolicy = "hold"
	// DrainFailureReboot authorizes the reboot anyway (kured's
	// --force-reboot).
	DrainFailureReboot DrainFailurePolicy = "reboot"
)

// Config is the part of the controller's configuration that decisions depend
// on.
type Config struct {
	// Conditions are the node condition types that, with status True, ask
	// for a reboot.
	Conditions []string
	// ConditionMinAge is how long a condition must have been True.
	ConditionMinAge time.Duration
	// Selector restricts the nodes that are rebooted; nil selects all.
	Selector labels.Selector
	// MaxConcurrent is the most nodes out (with a state) at any moment.
	MaxConcurrent int
	// MaxConcurrentControlPlane is the most control-plane nodes (see
	// IsControlPlane) out at any moment, within MaxConcurrent: one by
	// default, so that an etcd member is never down with another.
	MaxConcurrentControlPlane int
	// DrainTimeout bounds a drain, counted from state-since.
	DrainTimeout time.Duration
	// OnDrainFailure is the drain failure policy.
	OnDrainFailure DrainFailurePolicy
	// DrainFailureBackoff is how long a node whose drain failed (policy
	// uncordon) is left alone.
	DrainFailureBackoff time.Duration
	// RebootTimeout bounds the wait for a new boot ID and Ready, counted
	// from state-since.
	RebootTimeout time.Duration
	// PostRebootSoak is how long a rebooted node must stay Ready before it
	// is uncordoned.
	PostRebootSoak time.Duration
	// MinRebootInterval is the least time between two reboots of a node.
	MinRebootInterval time.Duration
	// AllowUnhealthyCluster lets nodes be taken while other selected nodes
	// are NotReady.
	AllowUnhealthyCluster bool
	// Window is when nodes may be taken; nil: always. A node taken inside
	// the window finishes after it closes.
	Window *gates.Window
	// DrainDelay is the wait between the cordon and the start of the
	// drain (within DrainTimeout, which counts from the cordon).
	DrainDelay time.Duration
	// PreRebootLabels are set on a node when it is taken and restored to
	// their earlier values when it leaves the pipeline; PostRebootLabels
	// are set when its reboot completes (and are off the node while it is
	// in the pipeline).
	PreRebootLabels, PostRebootLabels map[string]string
	// ScaleDownProtection puts the Cluster Autoscaler's scale-down-disabled
	// annotation on a node from its take until ScaleDownProtectionAfter
	// after it leaves the pipeline (only if it was not there).
	ScaleDownProtection      bool
	ScaleDownProtectionAfter time.Duration
}

// Block says why a reboot may not go ahead now (a gate is closed), and when
// to look again.
type Block struct {
	// Reason is one of BlockedReasons (the label of
	// nodereboot_reboot_blocked).
	Reason string
	// Message explains it for people (the RebootBlocked event).
	Message string
	// Until is when to look again; zero: at the next change.
	Until time.Time
}

func (b Block) String() string { return b.Reason + ": " + b.Message }

// DrainStatus summarises the pods of a draining node after a drain pass.
type DrainStatus struct {
	// Pending is the number of pods that must still leave the node (being
	// evicted, blocked, or terminating).
	Pending int
	// Blocked describes the pods whose eviction was refused, with the
	// disruption budgets that refused it, e.g. "default/web-1 (PDB
	// default/web)".
	Blocked []string
	// RetryAt is the earliest time a refused eviction will be tried again;
	// zero when none is scheduled.
	RetryAt time.Time
}

// Kind is the kind of an Action.
type Kind string

// The kinds of actions.
const (
	// Nothing: no step for this node; no requeue.
	Nothing Kind = "Nothing"
	// Wait: nothing to do now; look again at Until (if not zero) or at the
	// next change of the node.
	Wait Kind = "Wait"
	// Queue: the node needs a reboot and may start; admission (Admit)
	// decides when. RequestTime orders the queue.
	Queue Kind = "Queue"
	// Cordon: a node in the pipeline lost its cordon; cordon it again.
	Cordon Kind = "Cordon"
	// Drain: run a drain pass, then decide again with its DrainStatus.
	Drain Kind = "Drain"
	// Authorize: the drain is over; authorize the reboot of the current
	// boot ID.
	Authorize Kind = "Authorize"
	// MarkRebooted: a new boot ID is up and Ready; start the soak.
	MarkRebooted Kind = "MarkRebooted"
	// Finish: the reboot is complete; uncordon (if ours) and clear.
	Finish Kind = "Finish"
	// Fail: stop the pipeline for this node (state Failed, keeps its slot
	// and its cordon).
	Fail Kind = "Fail"
	// AbandonDrain: the drain failed with policy uncordon; give the node
	// back and set not-before.
	AbandonDrain Kind = "AbandonDrain"
	// Release: an operator removed the state annotation; uncordon (if ours)
	// and remove the controller's remaining annotations.
	Release Kind = "Release"
	// Reset: invalid annotations; write the safe values in Patch.
	Reset Kind = "ResetGarbage"
	// Unprotect: the scale-down protection of an idle node is over;
	// remove it.
	Unprotect Kind = "EndScaleDownProtection"
)

// Patch is a change to a node, as a JSON merge patch would carry it.
type Patch struct {
	// Unschedulable, when not nil, is the new spec.unschedulable.
	Unschedulable *bool
	// Annotations to set (non-nil value) or remove (nil value).
	Annotations map[string]*string
	// Labels to set (non-nil value) or remove (nil value).
	Labels map[string]*string
}

// Action is the next step for one node.
type Action struct {
	Kind Kind
	// Reason is the event reason that goes with the action (for Fail also
	// the state-reason; for Wait, a warning to announce once, if any).
	Reason string
	// Message explains the action for people (events, logs).
	Message string
	// Until is when to look at the node again (Wait, Queue); zero: only on
	// a change of the node.
	Until time.Time
	// RequestTime is when the reboot was requested (Queue).
	RequestTime time.Time
	// Elapsed is the time spent in the state being left (Authorize: the
	// drain; MarkRebooted: the reboot).
	Elapsed time.Duration
	// Patch is the change to write, for every kind that writes.
	Patch *Patch
}

func (a Action) String() string {
	var b strings.Builder
	b.WriteString(string(a.Kind))
	if a.Reason != "" {
		fmt.Fprintf(&b, " (%s)", a.Reason)
	}
	if a.Message != "" {
		fmt.Fprintf(&b, ": %s", a.Message)
	}
	if !a.Until.IsZero() {
		fmt.Fprintf(&b, " until %s", contract.FormatTime(a.Until))
	}
	return b.String()
}

// Input is everything Node decides from.
type Input struct {
	Node   *v1.Node
	Config *Config
	Now    time.Time
	// RequestSeen is when the controller first saw the node's
	// reboot-requested annotation (zero: now). The annotation carries no
	// time of its own, so this orders manual requests in the queue.
	RequestSeen time.Time
	// Drain is the result of a drain pass that just ran on this node; nil
	// when none ran.
	Drain *DrainStatus
	// Gate, when not nil, is a gate closed for this node's reboot; it is
	// checked again before the authorization (blocking pods, alerts), and
	// keeps a drained node from being authorized.
	Gate *Block
	// Slot is the node's entry in the slot record; nil: it holds none. A
	// node with controller annotations but no slot was not put out by the
	// controller: its annotations are removed, never acted on.
	Slot *Slot
	// Fresh names the reboot conditions the controller saw written (any
	// field changed) after it saw the node's new boot: they count even
	// when their timestamps cannot tell (see Stale). It is kept in memory
	// only; after a failover the timestamps decide alone.
	Fresh map[string]bool
}

// Reasons for Wait actions that are not in the contract. They are event
// reasons as well.
const (
	// WaitNoBootID: the node reports no boot ID, so no reboot can be
	// authorized (event reason RebootBlocked).
	WaitNoBootID = contract.ReasonRebootBlocked
)

func ptr(s string) *string { return &s }

// IsReady reports whether the node's Ready condition is True.
func IsReady(n *v1.Node) bool {
	c := condition(n, v1.NodeReady)
	return c != nil && c.Status == v1.ConditionTrue
}

func condition(n *v1.Node, t v1.NodeConditionType) *v1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// Selected reports whether the node is one the controller may reboot: it
// matches the selector and is not labelled disabled.
func Selected(n *v1.Node, cfg *Config) bool {
	if n.Labels[contract.LabelDisabled] == "true" {
		return false
	}
	return cfg.Selector == nil || cfg.Selector.Matches(labels.Set(n.Labels))
}

// StateOf returns the node's state annotation as is (possibly invalid) and
// whether it is present. A node with the annotation counts as out.
func StateOf(n *v1.Node) (string, bool) {
	s, ok := n.Annotations[contract.AnnotationState]
	return s, ok
}

// Out reports whether the node counts against --max-concurrent by what it
// carries (see Marked); the controller also counts the nodes of its slot
// record.
func Out(n *v1.Node) bool { return Marked(n) }

// lastReboot returns the node's last-reboot time, if it has a valid one.
func lastReboot(n *v1.Node) (time.Time, bool) {
	s, ok := n.Annotations[contract.AnnotationLastReboot]
	if !ok {
		return time.Time{}, false
	}
	t, err := contract.ParseTime(s)
	return t, err == nil
}

// Stale reports whether a True reboot condition may have been written
// before the node's last completed reboot, and so says nothing about the
// node since: its newest write (lastHeartbeatTime, or lastTransitionTime
// when that is later or the writer sets no heartbeat) is not after
// last-reboot, the time the controller saw the new boot.
//
// The detector rewrites its condition with a fresh heartbeat whenever it
// writes, and node-problem-detector does too; right after a reboot the
// condition still holds what was written before it until the restarted
// writer reports again. Heartbeats are written with the node's clock and
// last-reboot with the controller's, both at second precision: a condition
// written in the same second as last-reboot counts as stale (so a stale one
// is never taken for a fresh one), and a node clock that is behind only
// delays the moment a fresh condition counts (until its next write). A node
// clock ahead by more than the reboot took can make a stale condition look
// fresh: that leads to a RebootRequiredAgain warning, and the
// --min-reboot-interval still applies, so never to a reboot sooner.
//
// The controller does not depend on this alone: a condition it saw written
// after it saw the new boot counts whatever its timestamps (Input.Fresh).
func Stale(c *v1.NodeCondition, lastReboot time.Time) bool {
	written := c.LastHeartbeatTime.Time
	if c.LastTransitionTime.After(written) {
		written = c.LastTransitionTime.Time
	}
	// The API stores both at second precision; compare like that even
	// when an object was not read back from the API.
	return !written.Truncate(time.Second).After(lastReboot.Truncate(time.Second))
}

// request says whether and since when a reboot is requested, and, when only
// a too-young condition asks, when it will be old enough. stale counts the
// True conditions ignored because they were written before the last reboot.
func request(in Input) (requested bool, since time.Time, oldEnoughAt time.Time, stale int) {
	n, cfg := in.Node, in.Config
	if _, ok := n.Annotations[contract.AnnotationRebootRequested]; ok {
		requested = true
		since = in.RequestSeen
		if since.IsZero() {
			since = in.Now
		}
	}
	last, rebooted := lastReboot(n)
	for _, t := range cfg.Conditions {
		c := condition(n, v1.NodeConditionType(t))
		if c == nil || c.Status != v1.ConditionTrue {
			continue
		}
		if rebooted && !in.Fresh[t] && Stale(c, last) {
			stale++
			continue
		}
		ltt := c.LastTransitionTime.Time
		// Only a minimum age waits: the transition time is the node's
		// clock, and one ahead of ours must not hold a condition that
		// needs no age at all.
		if at := ltt.Add(cfg.ConditionMinAge); cfg.ConditionMinAge > 0 && at.After(in.Now) {
			if oldEnoughAt.IsZero() || at.Before(oldEnoughAt) {
				oldEnoughAt = at
			}
			continue
		}
		if !requested || ltt.Before(since) {
			since = ltt
		}
		requested = true
	}
	if requested {
		oldEnoughAt = time.Time{}
	}
	return requested, since, oldEnoughAt, stale
}

// Node decides the next step for one node. It is a pure function of its
// input.
func Node(in Input) Action {
	n, cfg, now := in.Node, in.Config, in.Now
	if n == nil {
		return Action{Kind: Nothing}
	}
	if in.Slot == nil {
		if a, bad := foreign(n); bad {
			return a
		}
	}
	if a, bad := garbage(in); bad {
		return a
	}
	raw, _ := StateOf(n)
	state := contract.State(raw) // garbage() rejected invalid values
	since, _ := contract.ParseTime(n.Annotations[contract.AnnotationStateSince])

	switch state {
	case contract.StateIdle:
		return idle(in)
	case contract.StateDraining:
		if a, ok := recordon(n); ok {
			return a
		}
		return draining(in, since)
	case contract.StateAuthorized:
		if a, ok := recordon(n); ok {
			return a
		}
		return authorized(n, cfg, now, since)
	case contract.StateRebooted:
		return rebooted(n, cfg, now, since)
	default: // Failed
		return Action{Kind: Wait, Message: "failed (" + n.Annotations[contract.AnnotationStateReason] +
			"): waiting for an operator to remove the " + contract.AnnotationState + " annotation"}
	}
}

// garbage checks the controller's annotations and returns a Reset action
// that writes safe values when any is invalid. Invalid values never lead to
// a reboot: at worst a node is drained again, then authorized by a finished
// drain.
func garbage(in Input) (Action, bool) {
	n, now := in.Node, in.Now
	ann := n.Annotations
	p := &Patch{Annotations: map[string]*string{}}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	raw, present := StateOf(n)
	state, err := contract.ParseState(raw)
	if present && (err != nil || state == contract.StateIdle) {
		// An unknown (or empty) state. If the node is cordoned, it may
		// have been anywhere in the pipeline: mark it Failed so that a
		// person looks at it (it keeps its cordon and its slot). If it
		// is schedulable, nothing is in progress: forget the state.
		if _, ours := ann[contract.AnnotationCordonedByUs]; ours || n.Spec.Unschedulable {
			bad("unknown state %q on a cordoned node: marked %s", raw, contract.StateFailed)
			p.Annotations[contract.AnnotationState] = ptr(string(contract.StateFailed))
			p.Annotations[contract.AnnotationStateSince] = ptr(contract.FormatTime(now))
			p.Annotations[contract.AnnotationStateReason] = ptr(contract.ReasonInvalidAnnotation)
		} else {
			bad("unknown state %q on a schedulable node: removed", raw)
			p.Annotations[contract.AnnotationState] = nil
			p.Annotations[contract.AnnotationStateSince] = nil
			p.Annotations[contract.AnnotationStateReason] = nil
		}
		if _, ok := ann[contract.AnnotationRebootAuthorized]; ok {
			p.Annotations[contract.AnnotationRebootAuthorized] = nil
		}
		return reset(p, problems), true
	}

	if state.Active() {
		if s, ok := ann[contract.AnnotationStateSince]; !ok {
			bad("%s missing: set to now", contract.AnnotationStateSince)
			p.Annotations[contract.AnnotationStateSince] = ptr(contract.FormatTime(now))
		} else if _, err := contract.ParseTime(s); err != nil {
			bad("%s: %v: set to now", contract.AnnotationStateSince, err)
			p.Annotations[contract.AnnotationStateSince] = ptr(contract.FormatTime(now))
		}
	}
	for _, k := range []string{contract.AnnotationLastReboot, contract.AnnotationNotBefore} {
		if s, ok := ann[k]; ok {
			if _, err := contract.ParseTime(s); err != nil {
				bad("%s: %v: removed", k, err)
				p.Annotations[k] = nil
			}
		}
	}
	boundLabels(n, in.Config, bad, p)
	boundTimes(n, in, state, bad, p)
	if s, ok := ann[contract.AnnotationScaleDownDisabledByUs]; ok && s != "true" {
		if _, err := contract.ParseTime(s); err != nil {
			bad("%s: %v: the protection ends now", contract.AnnotationScaleDownDisabledByUs, err)
			p.Annotations[contract.AnnotationScaleDownDisabledByUs] = ptr(contract.FormatTime(now))
		}
	}

	authz, hasAuthz := ann[contract.AnnotationRebootAuthorized]
	boot := n.Status.NodeInfo.BootID
	restartDrain := func(why string) {
		bad("%s in state %s: drain again", why, state)
		p.Annotations[contract.AnnotationState] = ptr(string(contract.StateDraining))
		p.Annotations[contract.AnnotationStateSince] = ptr(contract.FormatTime(now))
		if hasAuthz {
			p.Annotations[contract.AnnotationRebootAuthorized] = nil
		}
	}
	switch state {
	case contract.StateDraining, contract.StateFailed:
		// Only the Authorize step writes an authorization, and Fail
		// removes it.
		if hasAuthz {
			bad("%s=%q in state %s: removed", contract.AnnotationRebootAuthorized, authz, state)
			p.Annotations[contract.AnnotationRebootAuthorized] = nil
		}
	case contract.StateAuthorized:
		if authz == "" {
			restartDrain(fmt.Sprintf("%s missing", contract.AnnotationRebootAuthorized))
		} else if rec, ok := authorizedBoot(n); ok && rec != authz {
			// Somebody changed the authorization: a wrong value must
			// not pass for a completed reboot (authorized() takes any
			// other boot ID for one). Restore what Authorize wrote.
			bad("%s=%q is not the boot ID %s authorized (%s): restored", contract.AnnotationRebootAuthorized, authz, rec, contract.AnnotationStateReason)
			p.Annotations[contract.AnnotationRebootAuthorized] = ptr(rec)
		}
	case contract.StateRebooted:
		rec, recorded := authorizedBoot(n)
		switch {
		case authz == "" && recorded && rec != boot:
			// The reboot of that authorization is done: a missing
			// authorization must not drain and reboot the node a
			// second time for the same request.
			bad("%s missing in state %s: restored from %s", contract.AnnotationRebootAuthorized, state, contract.AnnotationStateReason)
			p.Annotations[contract.AnnotationRebootAuthorized] = ptr(rec)
		case authz == "":
			restartDrain(fmt.Sprintf("%s missing", contract.AnnotationRebootAuthorized))
		case authz == boot:
			restartDrain(fmt.Sprintf("%s is the current boot ID %q", contract.AnnotationRebootAuthorized, boot))
		}
	}
	if len(problems) == 0 {
		return Action{}, false
	}
	return reset(p, problems), true
}

func reset(p *Patch, problems []string) Action {
	return Action{Kind: Reset, Reason: contract.ReasonInvalidAnnotation,
		Message: "invalid annotations: " + strings.Join(problems, "; "), Patch: p}
}

// leftovers are the annotations that only make sense with a state.
var leftovers = []string{
	contract.AnnotationStateSince,
	contract.AnnotationStateReason,
	contract.AnnotationCordonedByUs,
	contract.AnnotationRebootAuthorized,
	contract.AnnotationLabelsBefore,
}

// setLabel records a label change in the patch.
func (p *Patch) setLabel(k string, v *string) {
	if p.Labels == nil {
		p.Labels = map[string]*string{}
	}
	p.Labels[k] = v
}

// LabelsBefore parses the node's AnnotationLabelsBefore: label → value
// before the take (nil: absent). ok is false when there is none.
func LabelsBefore(n *v1.Node) (saved map[string]*string, ok bool, err error) {
	raw, ok := n.Annotations[contract.AnnotationLabelsBefore]
	if !ok {
		return nil, false, nil
	}
	if err := json.Unmarshal([]byte(raw), &saved); err != nil {
		return nil, true, fmt.Errorf("invalid JSON object of label values: %v", err)
	}
	return saved, true, nil
}

// giveBack adds to p what a node leaving the pipeline (for whatever
// reason) gets back: the labels changed at the take, and the end of its
// scale-down protection (now, or --scale-down-protection-after from now).
func giveBack(n *v1.Node, cfg *Config, now time.Time, p *Patch) {
	if saved, ok, err := LabelsBefore(n); ok {
		if err == nil {
			keep, _ := restorableLabels(saved, cfg)
			for k, v := range keep {
				p.setLabel(k, v)
			}
		}
		p.Annotations[contract.AnnotationLabelsBefore] = nil
	}
	if n.Annotations[contract.AnnotationScaleDownDisabledByUs] == "true" {
		if cfg.ScaleDownProtectionAfter > 0 {
			p.Annotations[contract.AnnotationScaleDownDisabledByUs] = ptr(contract.FormatTime(now.Add(cfg.ScaleDownProtectionAfter)))
		} else {
			unprotect(n, p)
		}
	}
}

// unprotect removes the scale-down protection the controller added.
func unprotect(n *v1.Node, p *Patch) {
	if n.Annotations[contract.AnnotationScaleDownDisabled] == "true" {
		p.Annotations[contract.AnnotationScaleDownDisabled] = nil
	}
	p.Annotations[contract.AnnotationScaleDownDisabledByUs] = nil
}

func idle(in Input) Action {
	n, cfg, now := in.Node, in.Config, in.Now
	// An operator removed the state (to clear a Failed node, or to abort):
	// give the node back.
	var rest []string
	for _, k := range leftovers {
		if _, ok := n.Annotations[k]; ok {
			rest = append(rest, k)
		}
	}
	if n.Annotations[contract.AnnotationScaleDownDisabledByUs] == "true" {
		rest = append(rest, contract.AnnotationScaleDownDisabledByUs)
	}
	if len(rest) > 0 && RebootUnderWay(n) && in.Slot != nil {
		if deadline := rebootDeadline(in.Slot, cfg); now.Before(deadline) {
			return Action{Kind: Wait, Until: deadline,
				Message: fmt.Sprintf("state removed while the reboot of boot ID %s is under way (%s): the node stays cordoned and keeps its slot until it is back with a new boot ID, or until %s (--drain-timeout + --reboot-timeout after the take)",
					n.Status.NodeInfo.BootID, contract.AnnotationRebooting, contract.FormatTime(deadline))}
		}
	}
	if len(rest) > 0 {
		p := &Patch{Annotations: map[string]*string{}}
		for _, k := range rest {
			p.Annotations[k] = nil
		}
		giveBack(n, cfg, now, p)
		msg := "state removed: cleared " + strings.Join(rest, ", ")
		if _, ours := n.Annotations[contract.AnnotationCordonedByUs]; ours && n.Spec.Unschedulable {
			p.Unschedulable = new(false)
			msg = "state removed: uncordoned, cleared " + strings.Join(rest, ", ")
		}
		return Action{Kind: Release, Message: msg, Patch: p}
	}
	// The scale-down protection of an earlier reboot ends (garbage() made
	// sure the value is a time).
	var protectedUntil time.Time
	if s, ok := n.Annotations[contract.AnnotationScaleDownDisabledByUs]; ok {
		t, _ := contract.ParseTime(s)
		if !now.Before(t) {
			p := &Patch{Annotations: map[string]*string{}}
			unprotect(n, p)
			return Action{Kind: Unprotect, Patch: p,
				Message: "scale-down protection over (--scale-down-protection-after): removed " + contract.AnnotationScaleDownDisabled}
		}
		protectedUntil = t
	}
	a := queueOrWait(in)
	if !protectedUntil.IsZero() {
		switch {
		case a.Kind == Nothing:
			a = Action{Kind: Wait, Until: protectedUntil, Message: "scale-down protection until " + contract.FormatTime(protectedUntil)}
		case a.Until.IsZero() || protectedUntil.Before(a.Until):
			a.Until = protectedUntil
		}
	}
	return a
}

// queueOrWait decides for an idle node with nothing to clean up: wait, queue,
// or nothing.
func queueOrWait(in Input) Action {
	n, cfg, now := in.Node, in.Config, in.Now
	if !Selected(n, cfg) {
		return Action{Kind: Nothing, Message: "not selected"}
	}
	requested, since, oldEnoughAt, stale := request(in)
	if !requested {
		if !oldEnoughAt.IsZero() {
			return Action{Kind: Wait, Message: "reboot condition too recent", Until: oldEnoughAt}
		}
		if stale > 0 {
			return Action{Kind: Nothing, Message: "reboot condition True but written before the last reboot (" +
				n.Annotations[contract.AnnotationLastReboot] + "): ignored until its writer reports again"}
		}
		return Action{Kind: Nothing}
	}
	if n.Status.NodeInfo.BootID == "" {
		return Action{Kind: Wait, Reason: WaitNoBootID,
			Message: "reboot requested, but the node reports no boot ID (status.nodeInfo.bootID): its reboot could be neither authorized nor seen, so it is not queued"}
	}
	if s, ok := n.Annotations[contract.AnnotationNotBefore]; ok {
		if t, err := contract.ParseTime(s); err == nil && t.After(now) {
			return Action{Kind: Wait, Message: "not before " + s + " (an earlier drain failed)", Until: t}
		}
	}
	if s, ok := n.Annotations[contract.AnnotationLastReboot]; ok {
		if t, err := contract.ParseTime(s); err == nil {
			if next := t.Add(cfg.MinRebootInterval); next.After(now) {
				return Action{Kind: Wait, Reason: contract.ReasonRebootTooSoon, Until: next,
					Message: fmt.Sprintf("reboot requested again after the reboot of %s: waiting until %s (--min-reboot-interval %s)",
						s, contract.FormatTime(next), cfg.MinRebootInterval)}
			}
		}
	}
	return Action{Kind: Queue, RequestTime: since, Message: "reboot requested since " + contract.FormatTime(since)}
}

// recordon re-cordons a node of the pipeline that somebody uncordoned.
func recordon(n *v1.Node) (Action, bool) {
	if n.Spec.Unschedulable {
		return Action{}, false
	}
	p := &Patch{Unschedulable: new(true), Annotations: map[string]*string{}}
	p.Annotations[contract.AnnotationCordonedByUs] = ptr("true")
	return Action{Kind: Cordon, Reason: contract.ReasonCordoned, Patch: p,
		Message: "node in state " + n.Annotations[contract.AnnotationState] + " was uncordoned: cordoned again"}, true
}

func draining(in Input, since time.Time) Action {
	n, cfg, now := in.Node, in.Config, in.Now
	if in.Drain == nil {
		if start := since.Add(cfg.DrainDelay); now.Before(start) {
			return Action{Kind: Wait, Until: start,
				Message: fmt.Sprintf("cordoned; the drain starts at %s (--drain-delay %s)", contract.FormatTime(start), cfg.DrainDelay)}
		}
		return Action{Kind: Drain, Reason: contract.ReasonDraining}
	}
	d := in.Drain
	deadline := since.Add(cfg.DrainTimeout)
	expired := !now.Before(deadline)
	if d.Pending == 0 || (expired && cfg.OnDrainFailure == DrainFailureReboot) {
		// The reboot would be authorized now: only if no gate is
		// closed. Never against a gate, not even with
		// --on-drain-failure=reboot.
		if g := in.Gate; g != nil {
			msg := "drained, but " + g.Message
			if d.Pending > 0 {
				msg = fmt.Sprintf("drain not finished after %s (%d pods left), and %s", cfg.DrainTimeout, d.Pending, g.Message)
			}
			if !expired {
				until := deadline
				if !g.Until.IsZero() && g.Until.Before(until) {
					until = g.Until
				}
				return Action{Kind: Wait, Reason: contract.ReasonRebootBlocked, Message: msg, Until: until}
			}
			msg = fmt.Sprintf("reboot still blocked after --drain-timeout %s: %s", cfg.DrainTimeout, msg)
			if cfg.OnDrainFailure == DrainFailureHold {
				return fail(n, now, contract.ReasonRebootBlocked, msg+"; holding the node (--on-drain-failure=hold)")
			}
			return abandon(n, cfg, now, since, contract.ReasonRebootBlocked, msg)
		}
	}
	if d.Pending == 0 {
		return authorize(n, now, since, "drained")
	}
	if expired {
		msg := fmt.Sprintf("drain not finished after %s: %d pods left", cfg.DrainTimeout, d.Pending)
		if len(d.Blocked) > 0 {
			msg += "; blocked: " + strings.Join(d.Blocked, ", ")
		}
		switch cfg.OnDrainFailure {
		case DrainFailureHold:
			return fail(n, now, contract.ReasonDrainFailed, msg+"; holding the node (--on-drain-failure=hold)")
		case DrainFailureReboot:
			a := authorize(n, now, since, msg+"; rebooting anyway (--on-drain-failure=reboot)")
			if a.Kind == Authorize {
				a.Reason = contract.ReasonDrainFailed
			}
			return a
		default:
			return abandon(n, cfg, now, since, contract.ReasonDrainFailed, msg)
		}
	}
	until := deadline
	if !d.RetryAt.IsZero() && d.RetryAt.Before(until) {
		until = d.RetryAt
	}
	msg := fmt.Sprintf("%d pods left", d.Pending)
	if len(d.Blocked) > 0 {
		msg += "; blocked: " + strings.Join(d.Blocked, ", ")
	}
	return Action{Kind: Wait, Message: msg, Until: until}
}

// abandon gives a node whose drain failed (or whose reboot stayed blocked)
// back: uncordon (if ours), clear the state, not before the backoff.
func abandon(n *v1.Node, cfg *Config, now, since time.Time, reason, msg string) Action {
	back := now.Add(cfg.DrainFailureBackoff)
	p := &Patch{Annotations: map[string]*string{
		contract.AnnotationState:            nil,
		contract.AnnotationStateSince:       nil,
		contract.AnnotationStateReason:      nil,
		contract.AnnotationCordonedByUs:     nil,
		contract.AnnotationRebootAuthorized: nil,
		contract.AnnotationNotBefore:        ptr(contract.FormatTime(back)),
	}}
	giveBack(n, cfg, now, p)
	msg += "; giving the node back until " + contract.FormatTime(back) + " (--drain-failure-backoff)"
	if _, ours := n.Annotations[contract.AnnotationCordonedByUs]; ours {
		p.Unschedulable = new(false)
	}
	return Action{Kind: AbandonDrain, Reason: reason, Message: msg, Patch: p, Elapsed: now.Sub(since)}
}

func authorize(n *v1.Node, now, since time.Time, msg string) Action {
	boot := n.Status.NodeInfo.BootID
	if boot == "" {
		return Action{Kind: Wait, Reason: WaitNoBootID,
			Message: "drained, but the node reports no boot ID (status.nodeInfo.bootID): cannot authorize a reboot"}
	}
	p := &Patch{Annotations: map[string]*string{
		contract.AnnotationRebootAuthorized: ptr(boot),
		contract.AnnotationState:            ptr(string(contract.StateAuthorized)),
		contract.AnnotationStateSince:       ptr(contract.FormatTime(now)),
		contract.AnnotationStateReason:      ptr(contract.AuthorizedReason(boot)),
	}}
	return Action{Kind: Authorize, Reason: contract.ReasonRebootAuthorized, Patch: p, Elapsed: now.Sub(since),
		Message: msg + ": reboot of boot ID " + boot + " authorized"}
}

// authorizedBoot is the boot ID recorded in an Authorized node's
// state-reason (contract.AuthorizedReason), if any: a reboot-authorized that
// somebody changed is restored from it (see garbage), so that a wrong value
// never passes for a completed reboot.
func authorizedBoot(n *v1.Node) (string, bool) {
	return contract.AuthorizedBoot(n.Annotations[contract.AnnotationStateReason])
}

func fail(n *v1.Node, now time.Time, reason, msg string) Action {
	p := &Patch{Annotations: map[string]*string{
		contract.AnnotationState:       ptr(string(contract.StateFailed)),
		contract.AnnotationStateSince:  ptr(contract.FormatTime(now)),
		contract.AnnotationStateReason: ptr(reason),
	}}
	if _, ok := n.Annotations[contract.AnnotationRebootAuthorized]; ok {
		p.Annotations[contract.AnnotationRebootAuthorized] = nil
	}
	return Action{Kind: Fail, Reason: reason, Message: msg, Patch: p}
}

func authorized(n *v1.Node, cfg *Config, now, since time.Time) Action {
	authz := n.Annotations[contract.AnnotationRebootAuthorized]
	boot := n.Status.NodeInfo.BootID
	if boot != "" && boot != authz && IsReady(n) {
		p := &Patch{Annotations: map[string]*string{
			contract.AnnotationState:      ptr(string(contract.StateRebooted)),
			contract.AnnotationStateSince: ptr(contract.FormatTime(now)),
		}}
		return Action{Kind: MarkRebooted, Reason: contract.ReasonRebooted, Patch: p, Elapsed: now.Sub(since),
			Message: fmt.Sprintf("rebooted: boot ID %s -> %s", authz, boot)}
	}
	deadline := since.Add(cfg.RebootTimeout)
	if !now.Before(deadline) {
		why := "no new boot ID"
		if boot != authz {
			why = "new boot ID " + boot + " but not Ready"
		}
		return fail(n, now, contract.ReasonRebootTimeout,
			fmt.Sprintf("not back within %s of the authorization of boot ID %s (%s)", cfg.RebootTimeout, authz, why))
	}
	return Action{Kind: Wait, Message: "waiting for a new boot ID", Until: deadline}
}

func rebooted(n *v1.Node, cfg *Config, now, since time.Time) Action {
	if !IsReady(n) {
		deadline := since.Add(cfg.RebootTimeout)
		if !now.Before(deadline) {
			return fail(n, now, contract.ReasonRebootTimeout,
				fmt.Sprintf("not Ready within %s after its reboot", cfg.RebootTimeout))
		}
		return Action{Kind: Wait, Message: "rebooted but not Ready", Until: deadline}
	}
	// The soak runs on the controller's clock from the moment the new boot
	// was seen Ready (since). A later Ready transition (a flap) restarts
	// it, but only one the controller's clock can place: the transition
	// time is written by the node's clock, and one in the controller's
	// future (a node clock ahead) would hold the node for the skew.
	start := since
	if c := condition(n, v1.NodeReady); c != nil && c.LastTransitionTime.After(start) && !c.LastTransitionTime.After(now) {
		start = c.LastTransitionTime.Time
	}
	if end := start.Add(cfg.PostRebootSoak); end.After(now) {
		return Action{Kind: Wait, Message: "soaking after the reboot", Until: end}
	}
	p := &Patch{Annotations: map[string]*string{
		contract.AnnotationState:            nil,
		contract.AnnotationStateSince:       nil,
		contract.AnnotationStateReason:      nil,
		contract.AnnotationCordonedByUs:     nil,
		contract.AnnotationRebootAuthorized: nil,
		contract.AnnotationRebootRequested:  nil,
		contract.AnnotationNotBefore:        nil,
		// The reboot happened by the time the new boot was seen (the
		// Rebooted state-since), not at the end of the soak: conditions
		// written since then are about the new boot (see Stale).
		contract.AnnotationLastReboot: ptr(contract.FormatTime(since)),
	}}
	giveBack(n, cfg, now, p)
	for k, v := range cfg.PostRebootLabels {
		p.setLabel(k, ptr(v))
	}
	msg := "reboot completed"
	if _, ours := n.Annotations[contract.AnnotationCordonedByUs]; ours {
		p.Unschedulable = new(false)
		msg += ", uncordoned"
	} else if n.Spec.Unschedulable {
		msg += ", left cordoned (it was cordoned by somebody else)"
	}
	return Action{Kind: Finish, Reason: contract.ReasonRebootDone, Message: msg, Patch: p}
}

// TakePatch is the single patch that takes a node: cordon, state Draining,
// state-since, and cordoned-by-us only when the node was schedulable (an
// administrator's cordon is never undone by the controller).
//
// The same patch sets the pre-reboot labels and removes the post-reboot
// ones (remembering the values they replace in AnnotationLabelsBefore), and
// puts the scale-down protection on.
func TakePatch(n *v1.Node, now time.Time, cfg *Config) *Patch {
	p := &Patch{Unschedulable: new(true), Annotations: map[string]*string{
		contract.AnnotationState:       ptr(string(contract.StateDraining)),
		contract.AnnotationStateSince:  ptr(contract.FormatTime(now)),
		contract.AnnotationStateReason: nil,
		contract.AnnotationNotBefore:   nil,
	}}
	if !n.Spec.Unschedulable {
		p.Annotations[contract.AnnotationCordonedByUs] = ptr("true")
	}
	saved := map[string]*string{}
	for k, v := range cfg.PreRebootLabels {
		saved[k] = nil
		if cur, ok := n.Labels[k]; ok {
			saved[k] = ptr(cur)
		}
		p.setLabel(k, ptr(v))
	}
	for k, v := range cfg.PostRebootLabels {
		if _, pre := cfg.PreRebootLabels[k]; !pre && n.Labels[k] == v {
			if _, ok := n.Labels[k]; ok {
				saved[k] = ptr(v)
				p.setLabel(k, nil)
			}
		}
	}
	if len(saved) > 0 {
		b, _ := json.Marshal(saved) // sorted keys
		p.Annotations[contract.AnnotationLabelsBefore] = ptr(string(b))
	}
	if cfg.ScaleDownProtection {
		_, ours := n.Annotations[contract.AnnotationScaleDownDisabledByUs]
		if n.Annotations[contract.AnnotationScaleDownDisabled] != "true" || ours {
			p.Annotations[contract.AnnotationScaleDownDisabled] = ptr("true")
			p.Annotations[contract.AnnotationScaleDownDisabledByUs] = ptr("true")
		}
	}
	return p
}

// Candidate is a node that is waiting for a slot (its Node action is Queue).
type Candidate struct {
	Name        string
	RequestTime time.Time
	// ControlPlane: the node is a control-plane node (IsControlPlane).
	ControlPlane bool
	// Block, when not nil, is a gate closed for this node alone (blocking
	// pods): it is not taken, and the nodes after it in the queue may be.
	Block *Block
}

// Cluster is what admission needs to know about the other nodes and the
// cluster-wide gates.
type Cluster struct {
	// Out is the number of nodes out: with a state annotation, plus the
	// nodes taken whose take the cache does not show yet.
	Out int
	// OutControlPlane is how many of them are control-plane nodes.
	OutControlPlane int
	// NotReady names the selected nodes that are not out and not Ready.
	NotReady []string
	// Blocks are the cluster-wide gates the controller found closed
	// (pause, alerts).
	Blocks []Block
}

// Reasons for which a reboot can be blocked (label values of
// nodereboot_reboot_blocked).
const (
	// BlockedNotReady: a selected node that is not being rebooted is
	// NotReady.
	BlockedNotReady = "NodeNotReady"
	// BlockedPaused: the controller is paused (contract.AnnotationPaused).
	BlockedPaused = "Paused"
	// BlockedWindow: outside the reboot window.
	BlockedWindow = "OutsideRebootWindow"
	// BlockedPods: a pod matching --blocking-pod-selector is on the node.
	BlockedPods = "BlockingPod"
	// BlockedAlerts: Prometheus has alerts that block reboots.
	BlockedAlerts = "ActiveAlerts"
	// BlockedPrometheus: Prometheus could not be asked (fail safe).
	BlockedPrometheus = "PrometheusUnavailable"
)

// BlockedReasons lists every blocked reason.
var BlockedReasons = []string{BlockedNotReady, BlockedPaused, BlockedWindow, BlockedPods, BlockedAlerts, BlockedPrometheus}

// Admission is the result of Admit.
type Admission struct {
	// Take names the nodes to take now, in order.
	Take []string
	// Waiting names the candidates that stay queued, in order.
	Waiting []string
	// Blocks are the cluster-wide gates that keep every node from being
	// taken (sorted by reason); they are reported only while a node
	// waits.
	Blocks []Block
	// NodeBlocks are the waiting nodes held back by a gate of their own.
	NodeBlocks map[string]Block
	// Until is the earliest time a block may lift by itself (the window
	// opens, a blocker is checked again); zero: none.
	Until time.Time
}

// Blocked reports whether a cluster-wide gate blocks admission.
func (ad Admission) Blocked() bool { return len(ad.Blocks) > 0 }

// BlockedMessage explains the cluster-wide blocks ("" when none).
func (ad Admission) BlockedMessage() string {
	var msgs []string
	for _, b := range ad.Blocks {
		msgs = append(msgs, b.Message)
	}
	return strings.Join(msgs, "; ")
}

// WindowBlock returns the block of the reboot window at now, or nil when it
// is open.
func WindowBlock(cfg *Config, now time.Time) *Block {
	if cfg.Window.Contains(now) {
		return nil
	}
	open, _ := cfg.Window.Next(now)
	b := &Block{Reason: BlockedWindow, Until: open,
		Message: fmt.Sprintf("outside the reboot window (%s)", cfg.Window)}
	if !open.IsZero() {
		b.Message += "; it opens at " + contract.FormatTime(open)
	}
	return b
}

// Admit decides which candidates to take: the oldest requests first (ties
// broken by name), never more than MaxConcurrent nodes out, and none while
// a cluster-wide gate is closed: outside the reboot window, while a
// selected node that is not being rebooted is NotReady (unless
// AllowUnhealthyCluster), or for the cluster's Blocks. A candidate with a
// Block of its own stays waiting and lets the next one go.
func Admit(cands []Candidate, cl Cluster, cfg *Config, now time.Time) Admission {
	sorted := append([]Candidate(nil), cands...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if !a.RequestTime.Equal(b.RequestTime) {
			return a.RequestTime.Before(b.RequestTime)
		}
		return a.Name < b.Name
	})
	var ad Admission
	free := cfg.MaxConcurrent - cl.Out
	if len(sorted) > 0 {
		if b := WindowBlock(cfg, now); b != nil {
			ad.Blocks = append(ad.Blocks, *b)
		}
		if len(cl.NotReady) > 0 && !cfg.AllowUnhealthyCluster {
			nr := append([]string(nil), cl.NotReady...)
			sort.Strings(nr)
			ad.Blocks = append(ad.Blocks, Block{Reason: BlockedNotReady,
				Message: "not taking nodes while these nodes are NotReady: " + strings.Join(nr, ", ")})
		}
		ad.Blocks = append(ad.Blocks, cl.Blocks...)
		sort.SliceStable(ad.Blocks, func(i, j int) bool { return ad.Blocks[i].Reason < ad.Blocks[j].Reason })
	}
	if len(ad.Blocks) > 0 {
		free = 0
	}
	until := func(t time.Time) {
		if !t.IsZero() && (ad.Until.IsZero() || t.Before(ad.Until)) {
			ad.Until = t
		}
	}
	for _, b := range ad.Blocks {
		until(b.Until)
	}
	cpFree := cfg.MaxConcurrentControlPlane - cl.OutControlPlane
	for _, c := range sorted {
		switch {
		case free > 0 && c.ControlPlane && cpFree <= 0:
			// Waits for the control-plane slot; the next may go.
			ad.Waiting = append(ad.Waiting, c.Name)
		case free > 0 && c.Block != nil:
			if ad.NodeBlocks == nil {
				ad.NodeBlocks = map[string]Block{}
			}
			ad.NodeBlocks[c.Name] = *c.Block
			until(c.Block.Until)
			ad.Waiting = append(ad.Waiting, c.Name)
		case free > 0:
			ad.Take = append(ad.Take, c.Name)
			free--
			if c.ControlPlane {
				cpFree--
			}
		default:
			ad.Waiting = append(ad.Waiting, c.Name)
		}
	}
	return ad
}
