package controller

// What the controller reads of the informer cache beside the decisions:
// what admission depends on (fingerprint), the controller's own writes
// handed to ownWrites (ownwrites.go), and the release of a slot, which only
// a version past the node's take may decide (releaseIfOut).

import (
	"context"
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// trimNode drops, before a node enters the informer cache, what the
// controller never reads: managed fields and all of the status but the
// conditions, the boot ID and the kubelet's version. The cache holds every
// node of the cluster, and its size sets the controller's heap (at 5,000
// nodes, the status was half of it). Safe because the controller writes
// nodes by patches of the fields it sets, never by an update of a cached
// object. A field of the status the controller starts to read must be kept
// here (TestTrimNode).
func trimNode(n *v1.Node) {
	n.ManagedFields = nil
	n.Status = v1.NodeStatus{
		Conditions: n.Status.Conditions,
		NodeInfo: v1.NodeSystemInfo{
			BootID:         n.Status.NodeInfo.BootID,
			KubeletVersion: n.Status.NodeInfo.KubeletVersion,
		},
	}
}

// fingerprint is what admission depends on for one node: a change of it
// runs an admission pass; other changes (heartbeats) do not.
func fingerprint(n *v1.Node, cfg *decide.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%t|%t|", n.Spec.Unschedulable, decide.IsReady(n))
	keys := make([]string, 0, len(n.Labels)+len(n.Annotations))
	for k, v := range n.Labels {
		keys = append(keys, "l:"+k+"="+v)
	}
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, contract.Prefix) {
			keys = append(keys, "a:"+k+"="+v)
		}
	}
	sort.Strings(keys)
	b.WriteString(strings.Join(keys, ","))
	for _, t := range cfg.Conditions {
		if cd := contract.Condition(n, t); cd != nil {
			fmt.Fprintf(&b, "|%s=%s@%d", t, cd.Status, cd.LastTransitionTime.Unix())
		}
	}
	return b.String()
}

// wrote remembers the version of the controller's write to a node, so that
// the node is not decided again on an older one (ownWrites.wrote), and
// lets the next warning be announced.
func (c *Controller) wrote(node string, written *v1.Node) {
	c.own.wrote(node, written.ResourceVersion)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.warned, node)
}

// releaseIfOut gives the node's slot back if, checked while no take of
// the node is under way (Controller.takes), the slot record still holds it
// and n is a version of the node later than the one this controller took
// it from (ownWrites.pastTake). The caller has seen n carry nothing that
// keeps a slot (decide.KeepsSlot). Checked outside the lock, a release
// could be decided in the gap between a refused take's release and the
// next take and land after that take's slot: the node taken, its slot
// gone, and its own annotations then reset as foreign (the fault suite's
// leader-killed-mid-drain found a node left cordoned that way).
func (c *Controller) releaseIfOut(ctx context.Context, n *v1.Node) (bool, error) {
	c.takes.LockKey(n.Name)
	defer func() { _ = c.takes.UnlockKey(n.Name) }()
	if _, held := c.slots.Get(n.Name); !held || !c.own.pastTake(n) {
		return false, nil
	}
	return true, c.releaseSlot(ctx, n.Name)
}
