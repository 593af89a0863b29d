package decide

// An idle node: is a reboot requested, since when, and may it queue.

import (
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

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
// The detector's conditions do not depend on this: they name the boot they
// were observed in (see stale); Stale decides for other writers (such as
// node-problem-detector).
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
	if v, ok := n.Annotations[contract.AnnotationRebootRequested]; ok {
		requested = true
		since = contract.RequestTime(v, in.Now)
	}
	last, rebooted := lastReboot(n)
	for _, t := range cfg.Conditions {
		c := condition(n, v1.NodeConditionType(t))
		if c == nil || c.Status != v1.ConditionTrue {
			continue
		}
		if conditionStale(c, n, rebooted, last) {
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
	msg := "reboot requested since " + contract.FormatTime(since)
	if since.IsZero() {
		msg = "reboot requested by " + contract.AnnotationRebootRequested + " without a time: first in the queue"
	}
	return Action{Kind: Queue, RequestTime: since, Message: msg}
}

// conditionStale reports whether a True reboot condition says nothing about the
// node's current boot. A condition that names its boot (the detector's,
// contract.ConditionBoot) is stale exactly when that is not the current
// boot; for one that names none, its timestamps decide against the last
// reboot (Stale). Both are read from the Node alone, so every leader
// decides alike.
func conditionStale(c *v1.NodeCondition, n *v1.Node, rebooted bool, lastReboot time.Time) bool {
	if boot, ok := contract.ConditionBoot(c.Message); ok {
		return boot != n.Status.NodeInfo.BootID
	}
	return rebooted && Stale(c, lastReboot)
}
