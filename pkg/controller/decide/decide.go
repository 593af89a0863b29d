package decide

import (
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

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
		return rebooted(in, since)
	default: // Failed
		return Action{Kind: Wait, Message: "failed (" + n.Annotations[contract.AnnotationStateReason] +
			"): waiting for an operator to remove the " + contract.AnnotationState + " annotation"}
	}
}

// recordon re-cordons a node of the pipeline that somebody uncordoned.
func recordon(n *v1.Node) (Action, bool) {
	if n.Spec.Unschedulable {
		return Action{}, false
	}
	p := &Patch{Unschedulable: new(true), Annotations: map[string]*string{}}
	p.Annotations[contract.AnnotationCordonedByUs] = ptr.To("true")
	return Action{Kind: Cordon, Reason: contract.ReasonCordoned, Patch: p,
		Message: "node in state " + n.Annotations[contract.AnnotationState] + " was uncordoned: cordoned again"}, true
}

func authorize(n *v1.Node, now, since time.Time, msg string) Action {
	boot := n.Status.NodeInfo.BootID
	if boot == "" {
		return Action{Kind: Wait, Reason: WaitNoBootID,
			Message: "drained, but the node reports no boot ID (status.nodeInfo.bootID): cannot authorize a reboot"}
	}
	p := &Patch{Annotations: map[string]*string{
		contract.AnnotationRebootAuthorized: ptr.To(boot),
		contract.AnnotationState:            ptr.To(string(contract.StateAuthorized)),
		contract.AnnotationStateSince:       ptr.To(contract.FormatTime(now)),
		contract.AnnotationStateReason:      ptr.To(contract.AuthorizedReason(boot)),
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
		contract.AnnotationState:       ptr.To(string(contract.StateFailed)),
		contract.AnnotationStateSince:  ptr.To(contract.FormatTime(now)),
		contract.AnnotationStateReason: ptr.To(reason),
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
			contract.AnnotationState:      ptr.To(string(contract.StateRebooted)),
			contract.AnnotationStateSince: ptr.To(contract.FormatTime(now)),
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

func rebooted(in Input, since time.Time) Action {
	n, cfg, now := in.Node, in.Config, in.Now
	if !IsReady(n) {
		deadline := since.Add(cfg.RebootTimeout)
		if !now.Before(deadline) {
			return fail(n, now, contract.ReasonRebootTimeout,
				fmt.Sprintf("not Ready within %s after its reboot", cfg.RebootTimeout))
		}
		return Action{Kind: Wait, Message: "rebooted but not Ready", Until: deadline}
	}
	if a, held := release(in, since); held {
		return a
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
	p := leavePatch(map[string]*string{
		contract.AnnotationRebootRequested: nil,
		contract.AnnotationNotBefore:       nil,
		// The reboot happened by the time the new boot was seen (the
		// Rebooted state-since), not at the end of the soak: conditions
		// written since then are about the new boot (see Stale).
		contract.AnnotationLastReboot: ptr.To(contract.FormatTime(since)),
	})
	giveBack(n, cfg, now, p)
	for k, v := range cfg.PostRebootLabels {
		p.SetLabel(k, ptr.To(v))
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
