// Package observer checks nodereboot's safety invariants from outside, while
// a rollout runs: it watches Nodes, Pods and Events on the API server, reads
// the node simulator's reboot logs and, at the end, the API server's audit
// log. It shares no code with the controller or the detector: the annotation
// names and event reasons of the node contract (docs/node-contract.md) are
// spelled out again here, so that a change to them in pkg/contract that is
// not also a change to the documented contract shows up as a violation.
//
// The invariants (docs/reliability.md):
//
//   - I1: never more than --max-concurrent nodes between our cordon and our
//     uncordon (a valid nodereboot.io/state, or nodereboot.io/cordoned-by-us).
//   - I2: every reboot had an authorization for that node's boot ID when the
//     detector committed to it; no node rebooted twice in one pass through
//     the pipeline, nor outside it; no reboot of a node whose pods (other
//     than DaemonSet and mirror pods) were not gone before the authorization,
//     unless --on-drain-failure=reboot; one Rebooting event per boot (a
//     repeated one only says "issued again").
//   - I3: the controller's service account never deleted (nor otherwise
//     wrote) a pod: evictions only, which PodDisruptionBudgets guard; and no
//     budget ever had fewer healthy pods than it wants.
//   - I4: a node cordoned by somebody else is still cordoned at the end;
//     every node we cordoned is uncordoned at the end, unless it is Failed
//     with a reason.
//   - I5: every step has its Event; every node ends done or Failed with a
//     reason; the rollout ends.
//   - I6: the controller declares a node Rebooted only with a boot ID that a
//     reboot of that node produced.
//
// Resource versions of one etcd are one sequence across all resources, so
// the order of a pod's deletion and a node's authorization is known exactly,
// whatever the latency of the watches.
package observer
