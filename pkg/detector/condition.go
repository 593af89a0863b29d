package detector

import (
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
	"github.com/nodereboot/nodereboot/pkg/sentinel"
)

// nextCondition computes the condition to report for an observation, given
// the condition the node has now (nil if none). write is false when the node
// already says the same thing and its heartbeat is younger than heartbeat:
// then cond is prev, unchanged. first says that this process has not written
// the condition yet: its first write always happens, even when nothing
// changed, so that after a (re)start — above all after a boot — the condition
// carries a heartbeat from this process. The controller tells a condition
// written after a reboot from one left over from before it by that
// heartbeat.
//
// lastTransitionTime changes only when the status changes; lastHeartbeatTime
// is now on every write. The message is cleaned and capped by
// sanitize.Message (the probes clean what they quote already; this is the
// last line of defence, and it is idempotent, so a message compares equal to
// the one written before).
func nextCondition(prev *v1.NodeCondition, condType string, obs sentinel.Observation, now time.Time, heartbeat time.Duration, first bool) (cond v1.NodeCondition, write bool) {
	obs.Message = sanitize.Message(obs.Message)
	cond = v1.NodeCondition{
		Type:               v1.NodeConditionType(condType),
		Status:             obs.Status,
		Reason:             obs.Reason,
		Message:            obs.Message,
		LastHeartbeatTime:  metav1.NewTime(now),
		LastTransitionTime: metav1.NewTime(now),
	}
	if prev == nil {
		return cond, true
	}
	if prev.Status == obs.Status && !prev.LastTransitionTime.IsZero() {
		cond.LastTransitionTime = prev.LastTransitionTime
	}
	if prev.Status != obs.Status || prev.Reason != obs.Reason || prev.Message != obs.Message {
		return cond, true
	}
	if first || heartbeatDue(prev, now, heartbeat) {
		return cond, true
	}
	return *prev, false
}

// heartbeatDue reports whether prev's heartbeat is at least heartbeat old
// (or implausibly far in the future: another clock wrote it).
func heartbeatDue(prev *v1.NodeCondition, now time.Time, heartbeat time.Duration) bool {
	hb := prev.LastHeartbeatTime.Time
	return !now.Before(hb.Add(heartbeat)) || now.Before(hb.Add(-heartbeat))
}

// transitionEvent returns the Event to record when the reported condition
// goes from prev (nil if none) to cond: one per change of status or reason.
func transitionEvent(prev *v1.NodeCondition, cond v1.NodeCondition) (eventType, reason string, ok bool) {
	if prev != nil && prev.Status == cond.Status && prev.Reason == cond.Reason {
		return "", "", false
	}
	switch cond.Status {
	case v1.ConditionTrue:
		return v1.EventTypeNormal, contract.ReasonRebootRequired, true
	case v1.ConditionFalse:
		return v1.EventTypeNormal, contract.ReasonRebootNotRequired, true
	default:
		if cond.Reason == sentinel.ReasonSentinelUnreadable {
			return v1.EventTypeWarning, contract.ReasonSentinelUnreadable, true
		}
		return v1.EventTypeWarning, contract.ReasonRebootUnknown, true
	}
}
