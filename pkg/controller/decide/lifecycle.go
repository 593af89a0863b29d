package decide

// The node lifecycle conditions of KEP-5683 (MaintenancePlanned,
// DrainInProgress, Drained, MaintenanceInProgress): which ones a node should
// show, from its place in the pipeline. They are written, never read to
// decide a step.

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// lifecycleWant is what one lifecycle condition should say.
type lifecycleWant struct {
	status          v1.ConditionStatus
	reason, message string
}

// Lifecycle returns the lifecycle conditions to write on the node, given the
// action decided for it: only those that differ from what the node shows,
// in contract.LifecycleConditions order, with their transition times; nil
// when the node shows what it should (no request) or the conditions are off
// (Config.LifecycleConditions).
//
// The place in the pipeline is read only from what the controller wrote: a
// state on a node that holds no slot counts as none. A node in the pipeline
// shows the controller's view of every condition; on any other node the
// controller only sets False what it set True before (a condition whose
// message is not the controller's, say an administrator's
// MaintenancePlanned, is left alone), and never creates a False condition.
func Lifecycle(in Input, a Action) []v1.NodeCondition {
	if in.Node == nil || in.Config == nil || !in.Config.LifecycleConditions {
		return nil
	}
	want, pipeline, ok := lifecycleWanted(in, a)
	if !ok {
		return nil
	}
	now := metav1.NewTime(in.Now)
	var out []v1.NodeCondition
	for _, t := range contract.LifecycleConditions {
		w, set := want[t]
		if !set {
			continue
		}
		cur := contract.Condition(in.Node, t)
		if !lifecycleDiffers(cur, w, pipeline) {
			continue
		}
		c := v1.NodeCondition{Type: v1.NodeConditionType(t), Status: w.status, Reason: w.reason,
			Message: contract.LifecycleMessagePrefix + w.message, LastHeartbeatTime: now, LastTransitionTime: now}
		if cur != nil && cur.Status == w.status {
			c.LastTransitionTime = cur.LastTransitionTime
		}
		out = append(out, c)
	}
	return out
}

// lifecycleDiffers reports whether the condition cur must be written to say
// w. Statuses are compared, and the reason of the controller's own True
// conditions (the step it names); messages, heartbeats and the reasons of
// False conditions are not (no write for them).
func lifecycleDiffers(cur *v1.NodeCondition, w lifecycleWant, pipeline bool) bool {
	if cur == nil {
		return w.status == v1.ConditionTrue
	}
	ours := contract.LifecycleOurs(cur.Message)
	if cur.Status != w.status {
		return ours || pipeline || w.status == v1.ConditionTrue
	}
	return ours && w.status == v1.ConditionTrue && cur.Reason != w.reason
}

// lifecycleWanted is what the node's lifecycle conditions should say (types
// missing from want are left as they are), whether the node is in the
// pipeline, and false when nothing is to be written now.
func lifecycleWanted(in Input, a Action) (want map[string]lifecycleWant, pipeline, ok bool) {
	n := in.Node
	raw, stated := StateOf(n)
	if in.Slot != nil && (stated || a.Kind == Reset) {
		st, err := contract.ParseState(raw)
		if err != nil || st == contract.StateIdle || a.Kind == Reset {
			// Invalid annotations: written again once they are reset.
			return nil, false, false
		}
		return pipelineWant(n, st), true, true
	}
	if in.Slot != nil {
		// The state was removed while the node holds its slot: its
		// reboot is under way (KeepsSlot); it is given back later.
		return nil, false, false
	}
	idle := lifecycleWant{status: v1.ConditionFalse, reason: contract.ReasonLifecycleIdle,
		message: "no reboot queued or in progress"}
	want = map[string]lifecycleWant{}
	for _, t := range contract.LifecycleConditions {
		want[t] = idle
	}
	if a.Kind == Queue {
		want[contract.ConditionMaintenancePlanned] = lifecycleWant{status: v1.ConditionTrue,
			reason: contract.ReasonRebootQueued, message: "reboot queued, waiting for a slot"}
	}
	return want, false, true
}

// pipelineWant is what the conditions of a node in state st say.
func pipelineWant(n *v1.Node, st contract.State) map[string]lifecycleWant {
	planned := lifecycleWant{v1.ConditionTrue, contract.ReasonRebootQueued, "reboot in progress (" + contract.AnnotationState + "=" + string(st) + ")"}
	drainedDone := lifecycleWant{v1.ConditionTrue, contract.ReasonDrainCompleted, "drained for the reboot"}
	drainOver := lifecycleWant{v1.ConditionFalse, contract.ReasonDrainCompleted, "drained for the reboot"}
	switch st {
	case contract.StateDraining:
		notYet := lifecycleWant{v1.ConditionFalse, contract.ReasonDraining, "being drained for the reboot"}
		return map[string]lifecycleWant{
			contract.ConditionMaintenancePlanned:    planned,
			contract.ConditionDrainInProgress:       {v1.ConditionTrue, contract.ReasonDraining, "being drained for the reboot"},
			contract.ConditionDrained:               notYet,
			contract.ConditionMaintenanceInProgress: notYet,
		}
	case contract.StateAuthorized:
		return map[string]lifecycleWant{
			contract.ConditionMaintenancePlanned:    planned,
			contract.ConditionDrainInProgress:       drainOver,
			contract.ConditionDrained:               drainedDone,
			contract.ConditionMaintenanceInProgress: {v1.ConditionTrue, contract.ReasonRebootAuthorized, "reboot authorized"},
		}
	case contract.StateRebooted:
		return map[string]lifecycleWant{
			contract.ConditionMaintenancePlanned:    planned,
			contract.ConditionDrainInProgress:       drainOver,
			contract.ConditionDrained:               drainedDone,
			contract.ConditionMaintenanceInProgress: {v1.ConditionTrue, contract.ReasonRebooted, "rebooted, soaking and waiting for the release gate before the uncordon"},
		}
	default: // Failed: Drained stays what it was (before or after the drain)
		reason := failedReason(n)
		msg := "reboot failed (" + reason + "): the node stays out until an operator removes " + contract.AnnotationState
		return map[string]lifecycleWant{
			contract.ConditionMaintenancePlanned:    planned,
			contract.ConditionDrainInProgress:       {v1.ConditionFalse, reason, msg},
			contract.ConditionMaintenanceInProgress: {v1.ConditionTrue, reason, msg},
		}
	}
}

// failedReason is a Failed node's state-reason when it is a CamelCase
// contract reason (RebootTimeout, DrainFailed, InvalidAnnotation), else
// RebootFailed: a condition's reason is a machine-readable category.
func failedReason(n *v1.Node) string {
	switch r := n.Annotations[contract.AnnotationStateReason]; r {
	case contract.ReasonRebootTimeout, contract.ReasonDrainFailed, contract.ReasonInvalidAnnotation:
		return r
	}
	return contract.ReasonRebootFailed
}
