//go:build tools

// Package tools pins the container runtime of the real node (e2e/realnode,
// make test-node): containerd 2.x with its runc shim and ctr, runc (built
// with the seccomp tag: the detector's pod asks for the RuntimeDefault
// profile), and the CNI plugins bridge, host-local and loopback. Debian 12's
// containerd (1.6) is older than kubelet 1.37 supports. A module of its own,
// apart from the kubelet's, so that each resolves its dependencies as its
// upstream tests them.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/opencontainers/runc"
)
