// Package controller holds the end-to-end tests of nodereboot-controller on
// a real local control plane (e2e/framework: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok nodes) with simulated hosts
// (e2e/nodesim) running the real detector. The controller binary runs with a
// service-account kubeconfig bound to deploy/rbac/controller-clusterrole.yaml,
// and an independent watch counts the nodes out at every node event.
package controller
