package decide

import (
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/nodereboot/nodereboot/pkg/contract"
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
}

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
)

// Patch is a change to a node, as a JSON merge patch would carry it.
type Patch struct {
	// Unschedulable, when not nil, is the new spec.unschedulable.
	Unschedulable *bool
	// Annotations to set (non-nil value) or remove (nil value).
	Annotations map[string]*string
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

// Out reports whether the node counts against --max-concurrent: it has a
// state annotation, whatever its value.
func Out(n *v1.Node) bool {
	_, ok := StateOf(n)
	return ok
}

// request says whether and since when a reboot is requested, and, when only
// a too-young condition asks, when it will be old enough.
func request(in Input) (requested bool, since time.Time, oldEnoughAt time.Time) {
	n, cfg := in.Node, in.Config
	if _, ok := n.Annotations[contract.AnnotationRebootRequested]; ok {
		requested = true
		since = in.RequestSeen
		if since.IsZero() {
			since = in.Now
		}
	}
	for _, t := range cfg.Conditions {
		c := condition(n, v1.NodeConditionType(t))
		if c == nil || c.Status != v1.ConditionTrue {
			continue
		}
		ltt := c.LastTransitionTime.Time
		if at := ltt.Add(cfg.ConditionMinAge); at.After(in.Now) {
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
	return requested, since, oldEnoughAt
}

// Node decides the next step for one node. It is a pure function of its
// input.
func Node(in Input) Action {
	n, cfg, now := in.Node, in.Config, in.Now
	if n == nil {
		return Action{Kind: Nothing}
	}
	if a, bad := garbage(n, now); bad {
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
func garbage(n *v1.Node, now time.Time) (Action, bool) {
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
		switch {
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
	if len(rest) > 0 {
		p := &Patch{Annotations: map[string]*string{}}
		for _, k := range rest {
			p.Annotations[k] = nil
		}
		msg := "state removed: cleared " + strings.Join(rest, ", ")
		if _, ours := n.Annotations[contract.AnnotationCordonedByUs]; ours && n.Spec.Unschedulable {
			p.Unschedulable = new(false)
			msg = "state removed: uncordoned, cleared " + strings.Join(rest, ", ")
		}
		return Action{Kind: Release, Message: msg, Patch: p}
	}
	if !Selected(n, cfg) {
		return Action{Kind: Nothing, Message: "not selected"}
	}
	requested, since, oldEnoughAt := request(in)
	if !requested {
		if !oldEnoughAt.IsZero() {
			return Action{Kind: Wait, Message: "reboot condition too recent", Until: oldEnoughAt}
		}
		return Action{Kind: Nothing}
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
		return Action{Kind: Drain, Reason: contract.ReasonDraining}
	}
	d := in.Drain
	if d.Pending == 0 {
		return authorize(n, now, since, "drained")
	}
	deadline := since.Add(cfg.DrainTimeout)
	if !now.Before(deadline) {
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
			back := now.Add(cfg.DrainFailureBackoff)
			p := &Patch{Annotations: map[string]*string{
				contract.AnnotationState:            nil,
				contract.AnnotationStateSince:       nil,
				contract.AnnotationStateReason:      nil,
				contract.AnnotationCordonedByUs:     nil,
				contract.AnnotationRebootAuthorized: nil,
				contract.AnnotationNotBefore:        ptr(contract.FormatTime(back)),
			}}
			msg += "; giving the node back until " + contract.FormatTime(back) + " (--on-drain-failure=uncordon)"
			if _, ours := n.Annotations[contract.AnnotationCordonedByUs]; ours {
				p.Unschedulable = new(false)
			}
			return Action{Kind: AbandonDrain, Reason: contract.ReasonDrainFailed, Message: msg, Patch: p,
				Elapsed: now.Sub(since)}
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
		contract.AnnotationStateReason:      ptr(AuthorizedReasonPrefix + boot),
	}}
	return Action{Kind: Authorize, Reason: contract.ReasonRebootAuthorized, Patch: p, Elapsed: now.Sub(since),
		Message: msg + ": reboot of boot ID " + boot + " authorized"}
}

// AuthorizedReasonPrefix starts the state-reason of an Authorized node; the
// authorized boot ID follows. It is the controller's second record of that
// boot: a reboot-authorized that somebody changed is restored from it (see
// garbage), so that a wrong value never passes for a completed reboot.
const AuthorizedReasonPrefix = "authorized boot ID "

// authorizedBoot is the boot ID recorded in an Authorized node's
// state-reason, if any.
func authorizedBoot(n *v1.Node) (string, bool) {
	rec, ok := strings.CutPrefix(n.Annotations[contract.AnnotationStateReason], AuthorizedReasonPrefix)
	return rec, ok && rec != ""
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
	start := since
	if c := condition(n, v1.NodeReady); c != nil && c.LastTransitionTime.After(start) {
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
		contract.AnnotationLastReboot:       ptr(contract.FormatTime(now)),
	}}
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
func TakePatch(n *v1.Node, now time.Time) *Patch {
	p := &Patch{Unschedulable: new(true), Annotations: map[string]*string{
		contract.AnnotationState:       ptr(string(contract.StateDraining)),
		contract.AnnotationStateSince:  ptr(contract.FormatTime(now)),
		contract.AnnotationStateReason: nil,
		contract.AnnotationNotBefore:   nil,
	}}
	if !n.Spec.Unschedulable {
		p.Annotations[contract.AnnotationCordonedByUs] = ptr("true")
	}
	return p
}

// Candidate is a node that is waiting for a slot (its Node action is Queue).
type Candidate struct {
	Name        string
	RequestTime time.Time
}

// Cluster is what admission needs to know about the other nodes.
type Cluster struct {
	// Out is the number of nodes out: with a state annotation, plus the
	// nodes taken whose take the cache does not show yet.
	Out int
	// NotReady names the selected nodes that are not out and not Ready.
	NotReady []string
}

// Reasons for which admission can be blocked (label values of
// nodereboot_reboot_blocked).
const (
	// BlockedNotReady: a selected node that is not being rebooted is
	// NotReady.
	BlockedNotReady = "NodeNotReady"
)

// BlockedReasons lists every blocked reason.
var BlockedReasons = []string{BlockedNotReady}

// Admission is the result of Admit.
type Admission struct {
	// Take names the nodes to take now, in order.
	Take []string
	// Waiting names the candidates that stay queued, in order.
	Waiting []string
	// Blocked is the reason nothing may be taken ("" when not blocked).
	Blocked string
	// BlockedMessage explains Blocked.
	BlockedMessage string
}

// Admit decides which candidates to take: the oldest requests first (ties
// broken by name), never more than MaxConcurrent nodes out, and none while a
// selected node that is not being rebooted is NotReady (unless
// AllowUnhealthyCluster).
func Admit(cands []Candidate, cl Cluster, cfg *Config) Admission {
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
	if len(cl.NotReady) > 0 && !cfg.AllowUnhealthyCluster && len(sorted) > 0 {
		nr := append([]string(nil), cl.NotReady...)
		sort.Strings(nr)
		ad.Blocked = BlockedNotReady
		ad.BlockedMessage = "not taking nodes while these nodes are NotReady: " + strings.Join(nr, ", ")
		free = 0
	}
	for _, c := range sorted {
		if free > 0 {
			ad.Take = append(ad.Take, c.Name)
			free--
		} else {
			ad.Waiting = append(ad.Waiting, c.Name)
		}
	}
	return ad
}
