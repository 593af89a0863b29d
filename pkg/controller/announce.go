package controller

// The announcer: events, metrics and notifications, each said once per
// change. Nothing here decides anything: it only de-duplicates what the
// reconciler and the admission pass did.

import (
	"context"
	"maps"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/notify"
)

// warnOnce records a waiting node's warning the first time it is decided
// (and again when the warning's message changes).
func (c *Controller) warnOnce(node string, a decide.Action) {
	c.mu.Lock()
	key := a.Reason + "|" + a.Message
	if a.Reason == "" || c.warned[node] == key {
		if a.Reason == "" {
			delete(c.warned, node)
		}
		c.mu.Unlock()
		return
	}
	c.warned[node] = key
	c.mu.Unlock()
	typ := v1.EventTypeWarning
	if a.Reason == contract.ReasonWaitingForRelease {
		typ = v1.EventTypeNormal // waiting for the node's own pods is no fault
	}
	c.recorder.Event(contract.NodeRef(node), typ, a.Reason, a.Message)
}

// dryRunEvent logs and records a decision not carried out, once per
// distinct decision.
func (c *Controller) dryRunEvent(ctx context.Context, node string, a decide.Action) {
	msg := "would " + a.String()
	c.mu.Lock()
	if c.dryRun[node] == msg {
		c.mu.Unlock()
		return
	}
	c.dryRun[node] = msg
	c.mu.Unlock()
	klog.FromContext(ctx).Info("Dry run", "node", node, "decision", msg)
	c.recorder.Event(contract.NodeRef(node), v1.EventTypeNormal, contract.ReasonDryRun, msg)
}

// announce records RebootQueued for nodes that start waiting and
// RebootBlocked when the reason admission is blocked changes.
func (c *Controller) announce(ad decide.Admission) {
	c.mu.Lock()
	waiting := map[string]bool{}
	var fresh []string
	for _, name := range ad.Waiting {
		waiting[name] = true
		if !c.queued[name] {
			c.queued[name] = true
			fresh = append(fresh, name)
		}
	}
	for name := range c.queued {
		if !waiting[name] {
			delete(c.queued, name)
		}
	}
	var blockedOn string
	if msg := ad.BlockedMessage(); msg != c.blocked {
		c.blocked = msg
		if ad.Blocked() && len(ad.Waiting) > 0 {
			blockedOn = ad.Waiting[0]
		}
	}
	c.mu.Unlock()
	for _, name := range fresh {
		pos := 0
		for i, w := range ad.Waiting {
			if w == name {
				pos = i + 1
			}
		}
		c.recorder.Eventf(contract.NodeRef(name), v1.EventTypeNormal, contract.ReasonRebootQueued,
			"Reboot required; waiting for a slot (position %d of %d, --max-concurrent %d)", pos, len(ad.Waiting), c.cfg.Decide.MaxConcurrent)
	}
	if blockedOn != "" {
		c.recorder.Event(contract.NodeRef(blockedOn), v1.EventTypeWarning, contract.ReasonRebootBlocked, ad.BlockedMessage())
	}
	// Nodes held back by a gate of their own: one event per change.
	c.mu.Lock()
	var nodeEvents [][2]string
	for name, b := range ad.NodeBlocks {
		if c.nodeBlocked[name] != b.Message {
			c.nodeBlocked[name] = b.Message
			nodeEvents = append(nodeEvents, [2]string{name, b.Message})
		}
	}
	for name := range c.nodeBlocked {
		if _, ok := ad.NodeBlocks[name]; !ok && !waiting[name] {
			delete(c.nodeBlocked, name)
		}
	}
	c.mu.Unlock()
	sort.Slice(nodeEvents, func(i, j int) bool { return nodeEvents[i][0] < nodeEvents[j][0] })
	for _, e := range nodeEvents {
		c.recorder.Event(contract.NodeRef(e[0]), v1.EventTypeWarning, contract.ReasonRebootBlocked, e[1])
	}
}

// updateBlockedMetric sets nodereboot_reboot_blocked from the last
// admission pass and the drained nodes held back before their
// authorization.
func (c *Controller) updateBlockedMetric() {
	c.mu.Lock()
	blocked := maps.Clone(c.admitBlocked)
	for _, r := range c.authBlocks {
		blocked[r] = true
	}
	c.mu.Unlock()
	for _, r := range decide.BlockedReasons {
		v := 0.0
		if blocked[r] {
			v = 1
		}
		c.metrics.Blocked.WithLabelValues(r).Set(v)
	}
}

// setAuthBlock records the gate (nil: none) holding back a drained node's
// authorization.
func (c *Controller) setAuthBlock(node string, b *decide.Block) {
	c.mu.Lock()
	old, had := c.authBlocks[node]
	if b == nil {
		delete(c.authBlocks, node)
	} else {
		c.authBlocks[node] = b.Reason
	}
	changed := (b == nil && had) || (b != nil && (!had || old != b.Reason))
	c.mu.Unlock()
	if changed {
		c.updateBlockedMetric()
	}
}

// notify hands a step to the notifier (it never blocks).
func (c *Controller) notify(step notify.Step, node, reason, msg string) {
	if c.cfg.Notifier == nil || c.cfg.DryRun {
		return
	}
	c.cfg.Notifier.Notify(notify.Event{Step: step, Node: node, Reason: reason, Message: msg, Time: c.clock.Now()})
}

// notifyWritten hands a written action that people are told about to the
// notifier: an authorization, a finished reboot, a failure.
func (c *Controller) notifyWritten(node string, a decide.Action) {
	step := notify.StepFailure
	switch a.Kind {
	case decide.Authorize:
		step = notify.StepReboot
	case decide.Finish:
		step = notify.StepUncordon
	case decide.Fail, decide.AbandonDrain:
	default:
		return
	}
	c.notify(step, node, a.Reason, a.Message)
}

// announceWritten announces an action the reconciler has written: its
// notification, its metrics and its events.
func (c *Controller) announceWritten(node string, a decide.Action) {
	ref := contract.NodeRef(node)
	uncordoned := a.Patch.Unschedulable != nil && !*a.Patch.Unschedulable
	c.notifyWritten(node, a)
	switch a.Kind {
	case decide.Cordon:
		c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonCordoned, a.Message)
	case decide.Authorize:
		c.metrics.DrainDuration.Observe(a.Elapsed.Seconds())
		if a.Reason == contract.ReasonDrainFailed {
			c.recorder.Event(ref, v1.EventTypeWarning, contract.ReasonDrainFailed, a.Message)
		} else {
			c.recorder.Eventf(ref, v1.EventTypeNormal, contract.ReasonDrained, "All pods evicted in %s", a.Elapsed.Round(time.Second))
		}
		c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonRebootAuthorized, a.Message)
	case decide.MarkRebooted:
		c.metrics.RebootDuration.Observe(a.Elapsed.Seconds())
		c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonRebooted, a.Message)
	case decide.Finish:
		c.metrics.Reboots.WithLabelValues(ResultCompleted).Inc()
		if uncordoned {
			c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonUncordoned, "Uncordoned after the reboot")
		}
		c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonRebootDone, a.Message)
	case decide.Fail:
		switch a.Reason {
		case contract.ReasonRebootTimeout:
			c.metrics.Reboots.WithLabelValues(ResultTimeout).Inc()
		case contract.ReasonReleaseTimeout:
			c.metrics.Reboots.WithLabelValues(ResultReleaseTimeout).Inc()
		case contract.ReasonRebootBlocked:
			c.metrics.Reboots.WithLabelValues(ResultBlocked).Inc()
		default:
			c.metrics.Reboots.WithLabelValues(ResultDrainFailed).Inc()
		}
		c.recorder.Event(ref, v1.EventTypeWarning, a.Reason, a.Message)
	case decide.AbandonDrain:
		if a.Reason == contract.ReasonRebootBlocked {
			c.metrics.Reboots.WithLabelValues(ResultBlocked).Inc()
		} else {
			c.metrics.Reboots.WithLabelValues(ResultDrainFailed).Inc()
		}
		c.recorder.Event(ref, v1.EventTypeWarning, a.Reason, a.Message)
		if uncordoned {
			c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonUncordoned, "Uncordoned after a failed drain")
		}
	case decide.Release:
		if uncordoned {
			c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonUncordoned, a.Message)
		}
	case decide.Reset:
		c.metrics.InvalidAnnotations.Inc()
		c.recorder.Event(ref, v1.EventTypeWarning, contract.ReasonInvalidAnnotation, a.Message)
	}
}

// recordBlocked sets nodereboot_reboot_blocked from an admission pass.
// Waiting nodes not looked at in the pass (no free slot) keep their last
// known block.
func (c *Controller) recordBlocked(ad decide.Admission) {
	blocked := map[string]bool{}
	for _, b := range ad.Blocks {
		blocked[b.Reason] = true
	}
	for _, b := range ad.NodeBlocks {
		blocked[b.Reason] = true
	}
	c.mu.Lock()
	for _, name := range ad.Waiting {
		if b, ok := c.podBlocks[name]; ok {
			blocked[b.Reason] = true
		}
	}
	c.admitBlocked = blocked
	c.mu.Unlock()
	c.updateBlockedMetric()
}
