// Package aks simulates the node pools of an Azure Kubernetes Service
// cluster on the local control plane of e2e/framework: nodes named and
// labelled as AKS names and labels them (kubernetes.azure.com/agentpool,
// kubernetes.azure.com/mode, kubernetes.azure.com/os-sku, kubernetes.io/os),
// a system pool tainted CriticalAddonsOnly, and a Windows pool. `make demo
// --aks` and the walkthrough test use it.
//
// The walkthrough test (walkthrough_test.go) runs the commands of
// docs/aks.md — the code blocks marked <!-- test: NAME --> — with bash
// against such a cluster, with the real binaries as the installed
// DaemonSet and Deployment would run them, and checks what the page claims
// each step does. docs/aks.md ("What is tested and what is not") says what
// the local setup cannot do and what the test does instead.
package aks
