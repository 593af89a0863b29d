// Package plugin is the kubectl plugin kubectl-nodereboot: the status of
// every node (reboot condition, pipeline state, why it is blocked), a manual
// reboot request, the cluster-wide pause and resume, and a node's reboot
// history from its events. It uses the caller's kubeconfig as kubectl does
// (k8s.io/cli-runtime's ConfigFlags).
package plugin
