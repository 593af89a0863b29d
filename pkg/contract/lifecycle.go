package contract

import "strings"

// The node lifecycle conditions of KEP-5683 (Kubernetes 1.37, alpha,
// kubernetes/enhancements keps/sig-node/5683-lifecycle-conditions): plain
// condition types in a Node's status.conditions, written by "an admin or an
// admin-authorized maintenance controller". The controller writes them
// (--lifecycle-conditions) and never reads them to decide anything.
const (
	// ConditionMaintenancePlanned: the node is expected to undergo
	// maintenance (for the controller: a reboot is queued or under way).
	ConditionMaintenancePlanned = "MaintenancePlanned"
	// ConditionDrainInProgress: the node is actively being drained.
	ConditionDrainInProgress = "DrainInProgress"
	// ConditionDrained: the node has reached the drain criteria of the
	// actor managing the lifecycle.
	ConditionDrained = "Drained"
	// ConditionMaintenanceInProgress: the node is actively undergoing
	// maintenance (for the controller: from the authorization of its reboot
	// until it is given back).
	ConditionMaintenanceInProgress = "MaintenanceInProgress"
)

// LifecycleConditions are the KEP-5683 condition types the controller
// writes, in the order it writes them.
var LifecycleConditions = []string{
	ConditionMaintenancePlanned, ConditionDrainInProgress,
	ConditionDrained, ConditionMaintenanceInProgress,
}

// Reasons of the lifecycle conditions (the condition's machine-readable
// cause, CamelCase as the KEP asks). ReasonDrainCompleted is one of the
// KEP's own examples; the others name the controller's step.
const (
	// ReasonDrainCompleted: the drain criteria were met (Drained=True,
	// DrainInProgress=False). An upstream reason of KEP-5683.
	ReasonDrainCompleted = "DrainCompleted"
	// ReasonLifecycleIdle: the controller has no maintenance for the node
	// (every condition it set goes False with it).
	ReasonLifecycleIdle = "NoRebootInProgress"
)

// LifecycleMessagePrefix starts the message of every lifecycle condition
// the controller writes: a condition with another message was written by
// somebody else, and the controller leaves it alone on a node it has no
// business with.
const LifecycleMessagePrefix = "nodereboot-controller: "

// LifecycleOurs reports whether a lifecycle condition's message says the
// controller wrote it.
func LifecycleOurs(message string) bool {
	return strings.HasPrefix(message, LifecycleMessagePrefix)
}
