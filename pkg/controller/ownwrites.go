package controller

// ownWrites is the one place that knows what the informer cache does not
// show yet of the controller's own writes to a node, and from which version
// on it may.

import (
	"math"
	"sync"

	v1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// ownWrites remembers, per node, what the controller wrote that its informer
// cache may not show yet. It answers three questions, each from the node's
// record, by comparing resourceVersions as etcd revisions
// (contract.ResourceVersionOrder; the version of one object only grows):
//
//   - May the reconciler decide on this cached version (behind)? Not while
//     the cache shows a version older than the least one it must show: any
//     version after the one a take in flight was decided on, or the version
//     of the last landed write. A decision made on it would be refused
//     (409, every write is guarded by the version decided on) or, before a
//     take lands, could only make the take refused; the write's watch event
//     requeues the node. A write whose version does not parse is not waited
//     for, and a cached version that does not parse ends the wait.
//   - Which nodes may a take of this controller still land on
//     (takesInFlight)? Admission counts them as out, so that a cache that
//     lags counts too many nodes out, never too few. A take counts from the
//     moment it is decided (before its slot is written) until the cache
//     shows a later version of the node, the node is gone, or the take is
//     refused; a take whose version does not parse, until the cached
//     version is another string.
//   - May this version of a node that holds a slot show it out of the
//     pipeline (pastTake)? Only a version later than the one the take was
//     decided on: an object read before the take (a worker's, while the take
//     lands) never gives the slot back. That version is kept as long as the
//     slot is held (slotReleased), not only until the cache moves past it: a
//     worker may still hold an older object then. A take's version that does
//     not parse is never passed.
//
// Losing the records (a new leader) costs nothing that the Node and the
// slot record do not give back: the new leader's term fences every node
// holding a slot, so a write decided by the old one is refused. It has a
// lock of its own (not Controller.mu) and takes no other lock while holding
// it.
type ownWrites struct {
	mu    sync.Mutex
	nodes map[string]*ownWrite
}

// ownWrite is what ownWrites remembers of one node.
type ownWrite struct {
	// takenFrom is the resourceVersion the last take was decided on;
	// holds: its slot is not given back yet.
	takenFrom string
	holds     bool
	// inFlight: the cache may not show the take yet (it shows
	// takenFrom, or an older version).
	inFlight bool
	// written is the version of the last write the cache must show; 0:
	// none.
	written uint64
}

func newOwnWrites() *ownWrites { return &ownWrites{nodes: map[string]*ownWrite{}} }

// record returns the node's record, created if need be. Called locked.
func (o *ownWrites) record(node string) *ownWrite {
	r, ok := o.nodes[node]
	if !ok {
		r = &ownWrite{}
		o.nodes[node] = r
	}
	return r
}

// tidy drops the node's record once it remembers nothing. Called locked.
func (o *ownWrites) tidy(node string) {
	if r, ok := o.nodes[node]; ok && !r.holds && !r.inFlight && r.written == 0 {
		delete(o.nodes, node)
	}
}

// change applies f to the node's record, if there is one, and drops the
// record once it remembers nothing.
func (o *ownWrites) change(node string, f func(r *ownWrite)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r, ok := o.nodes[node]; ok {
		f(r)
		o.tidy(node)
	}
}

// beginTake records a take decided on n: from now on it may land. The
// node counts as out and is not decided on until the cache shows a later
// version of it, and only such a version can give its slot back.
func (o *ownWrites) beginTake(n *v1.Node) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.record(n.Name)
	r.takenFrom, r.holds, r.inFlight = n.ResourceVersion, true, true
}

// takeRefused drops the take in flight on node: it did not land. Its
// version stays until the slot is given back (slotReleased).
func (o *ownWrites) takeRefused(node string) {
	o.change(node, func(r *ownWrite) { r.inFlight = false })
}

// wrote records the version rv of a write to node that landed: the node is
// not decided on again before the cache shows it. A version that does not
// parse is not waited for.
func (o *ownWrites) wrote(node, rv string) {
	v, parsed := contract.ResourceVersionOrder(rv)
	if !parsed || v == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.record(node).written = v
}

// seen is told that the cache shows n: a take it moved past has landed.
func (o *ownWrites) seen(n *v1.Node) {
	o.change(n.Name, func(r *ownWrite) { r.see(n.ResourceVersion) })
}

// see drops the take in flight once cached (the cache's version of the
// node) is later than the take's version. Called locked.
func (r *ownWrite) see(cached string) {
	if !r.inFlight {
		return
	}
	from, ok1 := contract.ResourceVersionOrder(r.takenFrom)
	cur, ok2 := contract.ResourceVersionOrder(cached)
	if ok1 && ok2 {
		r.inFlight = cur <= from
		return
	}
	r.inFlight = cached == r.takenFrom
}

// behind reports whether the cached n is older than the least version the
// cache must show of the node (a take in flight, or the last write), and
// forgets what the cache shows.
func (o *ownWrites) behind(n *v1.Node) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.nodes[n.Name]
	if !ok {
		return false
	}
	defer o.tidy(n.Name)
	r.see(n.ResourceVersion)
	if r.written != 0 {
		if cur, parsed := contract.ResourceVersionOrder(n.ResourceVersion); parsed && cur < r.written {
			return true
		}
		r.written = 0
	}
	return r.inFlight
}

// takesInFlight returns the nodes among nodes (the cache's) that a take of
// this controller may still land on, and forgets the takes the cache moved
// past or whose node is gone.
func (o *ownWrites) takesInFlight(nodes []*v1.Node) map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]bool{}
	if len(o.nodes) == 0 {
		return out
	}
	// One pass over the cache, looking each node up in the (few) records.
	present := map[string]bool{}
	for _, n := range nodes {
		if r, ok := o.nodes[n.Name]; ok && r.inFlight {
			present[n.Name] = true
			r.see(n.ResourceVersion)
		}
	}
	for name, r := range o.nodes {
		if !r.inFlight {
			continue
		}
		if !present[name] {
			r.inFlight = false // the node is gone
		}
		if r.inFlight {
			out[name] = true
		}
		o.tidy(name)
	}
	return out
}

// pastTake reports whether n is a version of the node later than the one
// this controller took it from (true when no take of it is remembered: it
// took it in no earlier pass of this term, or gave its slot back): only
// such a version can show the node out of the pipeline.
func (o *ownWrites) pastTake(n *v1.Node) bool {
	o.mu.Lock()
	r, ok := o.nodes[n.Name]
	holds := ok && r.holds
	var takenFrom string
	if holds {
		takenFrom = r.takenFrom
	}
	o.mu.Unlock()
	if !holds {
		return true
	}
	from, parsed := contract.ResourceVersionOrder(takenFrom)
	if !parsed {
		from = math.MaxUint64
	}
	cur, parsed := contract.ResourceVersionOrder(n.ResourceVersion)
	return parsed && cur > from
}

// slotReleased forgets the take of node once its slot is given back.
func (o *ownWrites) slotReleased(node string) {
	o.change(node, func(r *ownWrite) { r.holds = false })
}

// forget drops everything remembered about a node that is gone.
func (o *ownWrites) forget(node string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.nodes, node)
}
