package main

import (
	"context"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// transition is a change of a node seen by the recorder's watch.
type transition struct {
	node string
	kind string // conditionTrue, conditionFalse, taken, authorized, rebooted, done
	at   time.Time
}

// recorder watches every node and timestamps what changes, as a user's
// `kubectl get nodes -w` would see it. Waiters get the receive time of the
// update that satisfied them.
type recorder struct {
	nodes cache.Indexer

	mu          sync.Mutex
	transitions []transition
	waiters     map[*waiter]struct{}
	out, maxOut int
	outNodes    map[string]string // node → resourceVersion at which it was seen taken
	maxOutNodes map[string]string // outNodes when maxOut was reached
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
	r := &recorder{waiters: map[*waiter]struct{}{}, outNodes: map[string]string{}}
	f := informers.NewSharedInformerFactory(client, 0)
	inf := f.Core().V1().Nodes().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { r.update(nil, obj.(*corev1.Node)) },
		UpdateFunc: func(o, n any) {
			r.update(o.(*corev1.Node), n.(*corev1.Node))
		},
	}); err != nil {
		return nil, err
	}
	r.nodes = inf.GetIndexer()
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	return r, nil
}

func conditionStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if string(c.Type) == contract.DefaultConditionType {
			return c.Status
		}
	}
	return ""
}

func (r *recorder) update(o, n *corev1.Node) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
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
				r.out++
				r.outNodes[n.Name] = n.ResourceVersion
				if r.out > r.maxOut {
					r.maxOut = r.out
					r.maxOutNodes = maps.Clone(r.outNodes)
				}
			case ns == string(contract.StateAuthorized):
				add("authorized")
			case os != "" && ns == "":
				add("done")
				r.out--
				delete(r.outNodes, n.Name)
			}
		}
		if o.Status.NodeInfo.BootID != n.Status.NodeInfo.BootID {
			add("rebooted")
		}
	}
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

// maxNodesOut is the largest number of nodes seen with a state at once,
// and which nodes they were (with the resource version of their take).
func (r *recorder) maxNodesOut() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxOut
}

func (r *recorder) maxOutSet() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.maxOutNodes)
}

func hasCondition(status corev1.ConditionStatus) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool { return conditionStatus(n) == status }
}

func idleAndSchedulable(n *corev1.Node) bool {
	return n.Annotations[contract.AnnotationState] == "" && !n.Spec.Unschedulable
}
