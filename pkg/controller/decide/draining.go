package decide

// A draining node: wait, drain, authorize, or give up by the drain
// failure policy.

import (
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// draining decides for a node in state Draining since since: wait for the
// drain delay, drain (Kind Drain asks for a drain pass and a second call
// with in.Drain), authorize once drained, or give up by the drain failure
// policy once --drain-timeout has passed.
func draining(in Input, since time.Time) Action {
	cfg, now := in.Config, in.Now
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
			return gateClosed(in, since, *g)
		}
	}
	if d.Pending == 0 {
		return authorize(in.Node, now, since, "drained")
	}
	if expired {
		return drainFailed(in, since)
	}
	until := deadline
	if !d.RetryAt.IsZero() && d.RetryAt.Before(until) {
		until = d.RetryAt
	}
	return Action{Kind: Wait, Message: pendingMessage(fmt.Sprintf("%d pods left", d.Pending), d), Until: until}
}

// gateClosed decides for a node whose reboot would be authorized now but
// for a closed gate: wait for it until --drain-timeout, then fail (hold)
// or give the node back.
func gateClosed(in Input, since time.Time, g Block) Action {
	n, cfg, now, d := in.Node, in.Config, in.Now, in.Drain
	deadline := since.Add(cfg.DrainTimeout)
	msg := "drained, but " + g.Message
	if d.Pending > 0 {
		msg = fmt.Sprintf("drain not finished after %s (%d pods left), and %s", cfg.DrainTimeout, d.Pending, g.Message)
	}
	if now.Before(deadline) {
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

// drainFailed applies --on-drain-failure to a drain not finished by
// --drain-timeout.
func drainFailed(in Input, since time.Time) Action {
	n, cfg, now, d := in.Node, in.Config, in.Now, in.Drain
	msg := pendingMessage(fmt.Sprintf("drain not finished after %s: %d pods left", cfg.DrainTimeout, d.Pending), d)
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

// pendingMessage appends the pods that block the drain to msg.
func pendingMessage(msg string, d *DrainStatus) string {
	if len(d.Pods) > 0 {
		msg += "; blocked: " + strings.Join(d.Pods, ", ")
	}
	return msg
}

// abandon gives a node whose drain failed (or whose reboot stayed blocked)
// back: uncordon (if ours), clear the state, not before the backoff.
func abandon(n *v1.Node, cfg *Config, now, since time.Time, reason, msg string) Action {
	back := now.Add(cfg.DrainFailureBackoff)
	p := leavePatch(map[string]*string{contract.AnnotationNotBefore: ptr.To(contract.FormatTime(back))})
	giveBack(n, cfg, now, p)
	msg += "; giving the node back until " + contract.FormatTime(back) + " (--drain-failure-backoff)"
	if _, ours := n.Annotations[contract.AnnotationCordonedByUs]; ours {
		p.Unschedulable = new(false)
	}
	return Action{Kind: AbandonDrain, Reason: reason, Message: msg, Patch: p, Elapsed: now.Sub(since)}
}
