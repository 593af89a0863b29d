//go:build tools

// Package tools pins the kubelet of the real-node tests (e2e/realnode, make
// test-node): built from the same k8s.io/kubernetes module, with the same
// replaces, as the control plane of hack/tools, so that node and control
// plane are one Kubernetes version. A module of its own so that the
// control plane's build (make tools) does not grow by the kubelet.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kubelet"
)
