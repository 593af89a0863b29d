// Package faults runs nodereboot rollouts on the local control plane
// (e2e/harness: several simulated nodes with a Deployment, its
// PodDisruptionBudget and a DaemonSet, a detector per node, two controller
// replicas) while it injects the faults real clusters see — a leader killed
// mid-step, a detector killed between its Rebooting event and the reboot,
// the API server or etcd restarted, budgets that never allow an eviction,
// garbage in the annotations, a skewed clock... — and has the independent
// observer (e2e/observer) check the safety invariants throughout.
//
// Every fault is placed in the rollout by waiting for a state (a node
// reaching Draining, a reboot request held at the simulated host's gate)
// plus a random delay drawn from a seeded generator; the seed is logged and
// NODEREBOOT_FAULTS_SEED replays a run.
//
//	go test ./e2e/faults/                            # the fast subset (make test)
//	NODEREBOOT_FAULTS=full go test -timeout 90m ./e2e/faults/   # every fault, several runs each (make test-faults)
//
// NODEREBOOT_FAULTS_RESULTS=<file> appends one JSON line per run (the source
// of the table in docs/reliability.md); NODEREBOOT_FAULTS_ONLY=<regexp>
// selects faults by name; NODEREBOOT_FAULTS_RUNS=<n> overrides the number of
// runs.
package faults
