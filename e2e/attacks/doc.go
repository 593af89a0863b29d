// Package attacks plays attacks on nodereboot's safety invariants on the real
// local control plane, with the attackers' own credentials (never the
// admin's): a service account that may only patch nodes, as many node
// agents may; a node's own identity (system:node:<name> in group
// system:nodes, confined by the Node authorizer and the NodeRestriction
// admission plugin, as a kubelet is); the detector's pod-bound token; and an
// install renamed with kustomize (namePrefix, nameSuffix, namespace), which
// must leave no admission policy open.
//
// harness.go installs deploy/ as documented (`kubectl apply --server-side
// -k`, or an overlay that renames it) on a fresh cluster and hands out the
// credentials: the controller's and the detectors' service-account tokens
// (a detector's bound to the DaemonSet's pod on its node, as the kubelet
// projects it), the node patcher's, the nodes'. StartController and
// StartHosts run the real binaries with those credentials (the hosts are
// e2e/nodesim simulators, each with a detector process), for attacks on a
// running rollout; TestRolloutThroughThePolicies shows that the policies let
// a whole rollout through. Every outcome is recorded (Install.Record) and,
// with NODEREBOOT_ATTACKS_RESULTS=<file>, written as the Markdown table that
// docs/reliability.md quotes.
//
// Needs bin/kubectl and the control plane (make tools).
package attacks
