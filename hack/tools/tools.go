//go:build tools

// Package tools pins the Kubernetes binaries that the local control plane
// (e2e/framework, make cluster) builds into bin/. Nothing here is compiled
// into nodereboot itself.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/component-base/cli"
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
