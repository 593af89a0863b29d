package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/nodesim"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// transition is a change of a node seen by the recorder's watch.
type transition struct {
	node string
	kind string // conditionTrue, conditionFalse, taken, authorized, rebooted, done
	at   time.Time
}

// outPoint is one observed version of a node: whether it was out then.
type outPoint struct {
	rv   uint64
	node string
	out  bool
}

// recorder watches every node and timestamps what changes, as a user's
// `kubectl get nodes -w` would see it. Waiters get the receive time of the
// update that satisfied them. It is also the benchmarks' oracle for
// --max-concurrent: every version of every node is kept as (resource
// version, out or not), nodes out before it started and deleted nodes
// included, and checkOut replays them in resource-version order.
type recorder struct {
	nodes cache.Indexer

	mu          sync.Mutex
	transitions []transition
	waiters     map[*waiter]struct{}
	points      []outPoint
	last        map[string]outPoint // each node's last observed version
	gap         map[string]bool     // nodes whose next version follows a relist
	changed     chan struct{}       // closed and replaced on every update
}

type waiter struct {
	node string // "" matches any node
	pred func(*corev1.Node) bool
	ch   chan seen
}

type seen struct {
	node string
	at   time.Time
}

func startRecorder(ctx context.Context, client kubernetes.Interface) (*recorder, error) {
	r := &recorder{waiters: map[*waiter]struct{}{}, last: map[string]outPoint{}, gap: map[string]bool{}, changed: make(chan struct{})}
	inf := cache.NewSharedIndexInformer(r.listWatch(client), &corev1.Node{}, 0, cache.Indexers{})
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.update(nil, obj.(*corev1.Node)) },
		UpdateFunc: func(o, n any) { r.update(o.(*corev1.Node), n.(*corev1.Node)) },
		DeleteFunc: r.deleted,
	}); err != nil {
		return nil, err
	}
	r.nodes = inf.GetIndexer()
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("recorder: node cache not synced: %w", ctx.Err())
	}
	return r, nil
}

// listWatch lists and watches Nodes; every list after the first is a
// relist, after which a node's versions in between may have been missed.
func (r *recorder) listWatch(client kubernetes.Interface) *cache.ListWatch {
	return framework.RelistingNodeListWatch(client, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for name := range r.last {
			r.gap[name] = true
		}
	})
}

func conditionStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if string(c.Type) == contract.DefaultConditionType {
			return c.Status
		}
	}
	return ""
}

// isOut: the node is in nodereboot's pipeline, between the cordon and the
// uncordon (any state, even one the controller would call invalid, or our
// cordon), as the controller counts it.
func isOut(n *corev1.Node) bool {
	if n == nil {
		return false
	}
	if n.Annotations[contract.AnnotationState] != "" {
		return true
	}
	_, ok := n.Annotations[contract.AnnotationCordonedByUs]
	return ok
}

func parseRV(s string) uint64 {
	rv, _ := strconv.ParseUint(s, 10, 64)
	return rv
}

// observe records a version of a node for the --max-concurrent replay;
// r.mu is held. Where the watch broke, the node counts as out between its
// two versions around the gap only if it was out at both: no violation is
// claimed from versions the watch may have skipped.
func (r *recorder) observe(node string, rv uint64, out bool) {
	if prev, ok := r.last[node]; ok && r.gap[node] {
		r.points = append(r.points, outPoint{prev.rv + 1, node, prev.out && out})
	}
	delete(r.gap, node)
	p := outPoint{rv, node, out}
	r.points = append(r.points, p)
	r.last[node] = p
}

func (r *recorder) deleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rv := parseRV(n.ResourceVersion)
	if prev, ok := r.last[n.Name]; ok && rv <= prev.rv {
		// The deletion's own version is unknown: out no later than
		// just after the last version seen.
		rv = prev.rv + 1
	}
	r.observe(n.Name, rv, false)
	delete(r.last, n.Name)
	delete(r.gap, n.Name)
}

func (r *recorder) update(o, n *corev1.Node) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observe(n.Name, parseRV(n.ResourceVersion), isOut(n))
	add := func(kind string) { r.transitions = append(r.transitions, transition{n.Name, kind, now}) }
	if o != nil {
		if oc, nc := conditionStatus(o), conditionStatus(n); oc != nc {
			switch nc {
			case corev1.ConditionTrue:
				add("conditionTrue")
			case corev1.ConditionFalse:
				add("conditionFalse")
			}
		}
		os, ns := o.Annotations[contract.AnnotationState], n.Annotations[contract.AnnotationState]
		if os != ns {
			switch {
			case os == "" && ns != "":
				add("taken")
			case ns == string(contract.StateAuthorized):
				add("authorized")
			case os != "" && ns == "":
				add("done")
			}
		}
		if o.Status.NodeInfo.BootID != n.Status.NodeInfo.BootID {
			add("rebooted")
		}
		if o.Annotations[contract.AnnotationRebooting] == "" && n.Annotations[contract.AnnotationRebooting] != "" {
			add("committed")
		}
		if ready(o) != ready(n) && ready(n) {
			add("ready")
		}
		if o.Spec.Unschedulable && !n.Spec.Unschedulable {
			add("uncordoned")
		}
	}
	close(r.changed)
	r.changed = make(chan struct{})
	for w := range r.waiters {
		if (w.node == "" || w.node == n.Name) && w.pred(n) {
			w.ch <- seen{n.Name, now}
			delete(r.waiters, w)
		}
	}
}

// wait returns when the node satisfies pred: now if its cached state does,
// else at the receive time of the update that does.
func (r *recorder) wait(ctx context.Context, node string, pred func(*corev1.Node) bool) (time.Time, error) {
	s, err := r.waitFor(ctx, node, pred)
	return s.at, err
}

// waitAny returns the first node that satisfies pred.
func (r *recorder) waitAny(ctx context.Context, pred func(*corev1.Node) bool) (string, error) {
	s, err := r.waitFor(ctx, "", pred)
	return s.node, err
}

func (r *recorder) waitFor(ctx context.Context, node string, pred func(*corev1.Node) bool) (seen, error) {
	w := &waiter{node: node, pred: pred, ch: make(chan seen, 1)}
	r.mu.Lock()
	candidates := r.nodes.List()
	if node != "" {
		candidates = nil
		if obj, ok, _ := r.nodes.GetByKey(node); ok {
			candidates = []any{obj}
		}
	}
	for _, obj := range candidates {
		if n := obj.(*corev1.Node); (node == "" || n.Name == node) && pred(n) {
			r.mu.Unlock()
			return seen{n.Name, time.Now()}, nil
		}
	}
	r.waiters[w] = struct{}{}
	r.mu.Unlock()
	select {
	case s := <-w.ch:
		return s, nil
	case <-ctx.Done():
		r.mu.Lock()
		delete(r.waiters, w)
		r.mu.Unlock()
		return seen{}, ctx.Err()
	}
}

// changes is closed at the next update of any node.
func (r *recorder) changes() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// isOut: the node's cached version is out.
func (r *recorder) isOut(node string) bool {
	obj, ok, _ := r.nodes.GetByKey(node)
	return ok && isOut(obj.(*corev1.Node))
}

// since returns the transitions recorded at or after t.
func (r *recorder) since(t time.Time) []transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []transition
	for _, tr := range r.transitions {
		if !tr.at.Before(t) {
			out = append(out, tr)
		}
	}
	return out
}

// outReplay replays every observed node version in resource-version order
// (one sequence for all objects of an etcd) and returns the most nodes out
// at once and, for the first moment more than limit were out, which nodes
// and at which resource version.
func (r *recorder) outReplay(limit int) (maxOut int, over []string, overRV uint64) {
	r.mu.Lock()
	pts := append([]outPoint(nil), r.points...)
	r.mu.Unlock()
	// Same version: leaving first, so that only a certain overlap counts.
	sort.SliceStable(pts, func(i, j int) bool {
		if pts[i].rv != pts[j].rv {
			return pts[i].rv < pts[j].rv
		}
		return !pts[i].out && pts[j].out
	})
	out := map[string]bool{}
	for _, p := range pts {
		if p.out {
			out[p.node] = true
		} else {
			delete(out, p.node)
		}
		maxOut = max(maxOut, len(out))
		if len(out) > limit && over == nil {
			for n := range out {
				over = append(over, n)
			}
			sort.Strings(over)
			overRV = p.rv
		}
	}
	return maxOut, over, overRV
}

// maxNodesOut is the largest number of nodes seen out at once.
func (r *recorder) maxNodesOut() int {
	m, _, _ := r.outReplay(int(^uint(0) >> 1))
	return m
}

// checkOut is an error naming the nodes if more than limit were ever out
// at once.
func (r *recorder) checkOut(limit int) error {
	m, over, rv := r.outReplay(limit)
	if over == nil {
		return nil
	}
	return fmt.Errorf("%d nodes out at once with --max-concurrent %d (most seen: %d), at resource version %d: %v", len(over), limit, m, rv, over)
}

func hasCondition(status corev1.ConditionStatus) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool { return conditionStatus(n) == status }
}

func idleAndSchedulable(n *corev1.Node) bool {
	return n.Annotations[contract.AnnotationState] == "" && !n.Spec.Unschedulable
}

// ready reports whether the node's Ready condition is True.
func ready(n *corev1.Node) bool {
	c := nodesim.ReadyCondition(n)
	return c != nil && c.Status == corev1.ConditionTrue
}
