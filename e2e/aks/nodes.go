package aks

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodereboot/nodereboot/e2e/framework"
)

// The labels AKS puts on every node.
const (
	LabelAgentPool = "kubernetes.azure.com/agentpool"
	LabelMode      = "kubernetes.azure.com/mode"
	LabelOSSKU     = "kubernetes.azure.com/os-sku"
	LabelOS        = "kubernetes.io/os"
	// LabelNodeImageVersion is the pool's node image, e.g.
	// AKSUbuntu-2204gen2containerd-202511.04.0.
	LabelNodeImageVersion = "kubernetes.azure.com/node-image-version"
)

// TaintCriticalAddonsOnly is the taint AKS recommends for system pools.
var TaintCriticalAddonsOnly = corev1.Taint{Key: "CriticalAddonsOnly", Value: "true", Effect: corev1.TaintEffectNoSchedule}

// Pool is one AKS node pool.
type Pool struct {
	Name  string // e.g. nodepool1
	Mode  string // "system" or "user", as the label has it
	OSSKU string // Ubuntu, AzureLinux, Windows2022, ...
	Count int
	// Taints are the pool's node taints.
	Taints []corev1.Taint
}

// Windows reports whether the pool runs Windows nodes.
func (p Pool) Windows() bool { return len(p.OSSKU) >= 7 && p.OSSKU[:7] == "Windows" }

// NodeName is the name AKS gives the pool's i-th node: the virtual machine
// scale set instance's computer name, aks-<pool>-<hash>-vmss<6 digits> on
// Linux, and aks<pool><6 digits> on Windows (whose names are at most 15
// characters).
func (p Pool) NodeName(i int) string {
	if p.Windows() {
		return fmt.Sprintf("aks%s%06d", p.Name, i)
	}
	return fmt.Sprintf("aks-%s-12345678-vmss%06d", p.Name, i)
}

// Node is the pool's i-th node as the local cluster creates it: kwok's
// template with AKS's labels and the pool's taints.
func (p Pool) Node(i int) *corev1.Node {
	n := framework.NodeTemplate(p.NodeName(i))
	os, image := "linux", "AKSUbuntu-2204gen2containerd-202511.04.0"
	switch {
	case p.Windows():
		os, image = "windows", "AKSWindows-2022-containerd-20348.2025.251104"
		// Linux test workloads select type=kwok: keep them off Windows.
		delete(n.Labels, "type")
	case p.OSSKU == "AzureLinux":
		image = "AKSAzureLinux-V3gen2-202511.04.0"
	}
	for k, v := range map[string]string{
		LabelAgentPool:                     p.Name,
		"agentpool":                        p.Name,
		LabelMode:                          p.Mode,
		LabelOSSKU:                         p.OSSKU,
		LabelOS:                            os,
		LabelNodeImageVersion:              image,
		"kubernetes.azure.com/cluster":     "MC_my-rg_my-cluster_westeurope",
		"kubernetes.azure.com/role":        "agent",
		"node.kubernetes.io/instance-type": "Standard_D4ds_v5",
		"topology.kubernetes.io/region":    "westeurope",
	} {
		n.Labels[k] = v
	}
	n.Spec.Taints = append([]corev1.Taint(nil), p.Taints...)
	return n
}

// DefaultPools is a small cluster as AKS users run it: a system pool of two
// Ubuntu nodes tainted CriticalAddonsOnly, a user pool of two Ubuntu nodes,
// an Azure Linux pool and a Windows pool of one node each.
func DefaultPools() []Pool {
	return []Pool{
		{Name: "systempool", Mode: "system", OSSKU: "Ubuntu", Count: 2, Taints: []corev1.Taint{TaintCriticalAddonsOnly}},
		{Name: "nodepool1", Mode: "user", OSSKU: "Ubuntu", Count: 2},
		{Name: "azlinux", Mode: "user", OSSKU: "AzureLinux", Count: 1},
		{Name: "npwin", Mode: "user", OSSKU: "Windows2022", Count: 1},
	}
}

// Created lists the nodes CreatePools made.
type Created struct {
	// Linux and Windows are node names in pool order.
	Linux, Windows []string
	// Pool maps each node name to its pool.
	Pool map[string]Pool
}

// CreatePools creates the pools' nodes and waits until kwok reports each
// Ready.
func CreatePools(ctx context.Context, c *framework.Cluster, pools []Pool) (*Created, error) {
	out := &Created{Pool: map[string]Pool{}}
	for _, p := range pools {
		for i := range p.Count {
			n := p.Node(i)
			if _, err := c.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
				return nil, fmt.Errorf("create node %s: %w", n.Name, err)
			}
			out.Pool[n.Name] = p
			if p.Windows() {
				out.Windows = append(out.Windows, n.Name)
			} else {
				out.Linux = append(out.Linux, n.Name)
			}
		}
	}
	for name := range out.Pool {
		if _, err := c.WaitForNode(ctx, name, framework.NodeReady); err != nil {
			return nil, fmt.Errorf("node %s: %w (kwok log: %s)", name, err, c.Kwok.LogFile)
		}
	}
	return out, nil
}
