// Package detector is the per-node half of nodereboot. It runs on every node
// (a DaemonSet) and does two things:
//
//   - It reports whether the node needs a reboot: it observes the sentinel
//     (package sentinel) and writes one node condition with a strategic-merge
//     patch to nodes/status, records an Event on every transition and exports
//     Prometheus metrics.
//   - It reboots the node when, and only when, the controller authorized the
//     node's current boot: the annotation nodereboot.io/reboot-authorized
//     equals the boot ID read from the host (package reboot does the reboot).
//
// It watches only its own Node object; the decisions are pure functions
// (nextCondition, rebootDecision) and the I/O stays in the loops around them.
package detector
