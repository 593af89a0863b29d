package controller

// What the informer cache shows of the controller's own writes: the
// expectations of takes that may still land, the last write per node, the
// conditions written after a reboot, and what admission depends on.

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// observe drops the expectation for a node whose cached version moved past
// the one it was taken from.
func (c *Controller) observe(n *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rv, ok := c.expectations[n.Name]; ok && rv != n.ResourceVersion {
		delete(c.expectations, n.Name)
	}
}

// behindOwnWrite reports whether the cached node is older than the
// controller's last write to it (and forgets the write once it is not).
// Resource versions that do not parse as integers are not compared.
func (c *Controller) behindOwnWrite(n *v1.Node) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.written[n.Name]
	if !ok {
		return false
	}
	rv, parsed := contract.ResourceVersionOrder(n.ResourceVersion)
	if parsed && rv < w {
		return true
	}
	delete(c.written, n.Name)
	return false
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

func (c *Controller) expect(n *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expectations[n.Name] = n.ResourceVersion
}

// unexpect drops the expectation of a take that was refused.
func (c *Controller) unexpect(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.expectations, node)
}

// wrote remembers the version of the controller's write to a node, so that
// the node is not decided again on an older one.
func (c *Controller) wrote(node string, written *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.warned, node)
	if rv, parsed := contract.ResourceVersionOrder(written.ResourceVersion); parsed {
		c.written[node] = rv
	}
}

// pendingTakes returns the nodes a take of this controller may still land
// on (the cache shows the version they were taken from), and forgets the
// expectations the cache has moved past.
func (c *Controller) pendingTakes(nodes []*v1.Node) map[string]bool {
	rvs := make(map[string]string, len(nodes))
	for _, n := range nodes {
		rvs[n.Name] = n.ResourceVersion
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for name, rv := range c.expectations {
		if cur, ok := rvs[name]; !ok || cur != rv {
			delete(c.expectations, name)
			continue
		}
		out[name] = true
	}
	return out
}

// rememberTake records the version a take is decided on (see takenFrom).
func (c *Controller) rememberTake(n *v1.Node) {
	rv, parsed := contract.ResourceVersionOrder(n.ResourceVersion)
	if !parsed {
		rv = math.MaxUint64
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.takenFrom[n.Name] = rv
}

// forgetTake drops the take's version once its slot is given back.
func (c *Controller) forgetTake(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.takenFrom, node)
}

// pastTake reports whether n is a version of the node later than the one
// this controller took it from (true when it took it in no earlier pass of
// this term): only such a version can show the node out of the pipeline.
// Resource versions are compared as etcd revisions; the version of one
// object only grows.
func (c *Controller) pastTake(n *v1.Node) bool {
	c.mu.Lock()
	from, ok := c.takenFrom[n.Name]
	c.mu.Unlock()
	if !ok {
		return true
	}
	rv, parsed := contract.ResourceVersionOrder(n.ResourceVersion)
	return parsed && rv > from
}

// releaseIfOut gives the node's slot back if, checked while no take of
// the node is under way (Controller.takes), the slot record still holds it
// and n is a version of the node later than the one this controller took
// it from (pastTake). The caller has seen n carry nothing that keeps a slot
// (decide.KeepsSlot). Checked outside the lock, a release could be decided
// in the gap between a refused take's release and the next take and land
// after that take's slot: the node taken, its slot gone, and its own
// annotations then reset as foreign (the fault suite's
// leader-killed-mid-drain found a node left cordoned that way).
func (c *Controller) releaseIfOut(ctx context.Context, n *v1.Node) (bool, error) {
	c.takes.LockKey(n.Name)
	defer func() { _ = c.takes.UnlockKey(n.Name) }()
	if _, held := c.slots.Get(n.Name); !held || !c.pastTake(n) {
		return false, nil
	}
	return true, c.releaseSlot(ctx, n.Name)
}
