// Package framework starts a real, local Kubernetes control plane for tests:
// etcd, kube-apiserver (secure serving, RBAC and Node authorization,
// service-account tokens, default admission), kube-controller-manager,
// kube-scheduler and kwok simulating nodes. The binaries are the pinned ones
// that `make tools` builds into bin/ from hack/tools/go.mod.
//
// Every component listens on 127.0.0.1 on a free port, keeps its data in a
// temporary folder and its log in LogDir, and is stopped when the test ends,
// also when it fails; the processes die with the test binary if it is killed.
package framework
