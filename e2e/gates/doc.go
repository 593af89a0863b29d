// Package gates_test runs the controller's policy gates on the real local
// control plane (e2e/harness: API server, kwok nodes, the real detectors,
// RBAC and service-account credentials as deployed): a reboot window, a
// blocking pod, a firing alert of a real Prometheus server (Debian's
// prometheus package; the test is skipped without it), node labels and the
// scale-down protection, the pause, and the kubectl plugin.
package gates_test
