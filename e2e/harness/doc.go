// Package harness sets up nodereboot as it runs in a cluster, on the local
// control plane: the RBAC from deploy/rbac with one service account per
// binary, a node simulator with a real nodereboot-detector process per node,
// controller replicas as real nodereboot-controller processes, and a sample
// workload with a PodDisruptionBudget. The e2e tests, `make demo` and the
// benchmarks share it.
package harness
