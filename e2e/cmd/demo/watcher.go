package main

import (
	"context"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/harness"
	"github.com/nodereboot/nodereboot/e2e/nodesim"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// watcher keeps the demo's view of the cluster: nodes and node events, from
// informers. changed is signalled (without blocking) on every update.
type watcher struct {
	h       *harness.Harness
	changed chan struct{}
	nodes   cache.Indexer

	mu     sync.Mutex
	events []*corev1.Event
	seen   map[string]bool
	steps  map[string]map[step]time.Time // node → step → when this watcher first saw it
}

// step is a point of a node's rollout that the timeline shows.
type step int

const (
	stepRequired step = iota
	stepCordoned
	stepAuthorized
	stepDown
	stepUp
	stepUncordoned
	numSteps
)

var stepNames = [numSteps]string{"reboot required", "cordoned", "authorized", "went down", "back (new boot ID)", "uncordoned"}

// observe records the steps that an update of a node shows for the first time.
func (w *watcher) observe(oldNode, n *corev1.Node) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.steps[n.Name]
	if m == nil {
		m = map[step]time.Time{}
		w.steps[n.Name] = m
	}
	mark := func(s step, happened bool) {
		if _, done := m[s]; happened && !done {
			m[s] = now
		}
	}
	if c := condition(n, contract.DefaultConditionType); c != nil && c.Status == corev1.ConditionTrue {
		mark(stepRequired, true)
	}
	state := n.Annotations[contract.AnnotationState]
	mark(stepCordoned, state != "")
	mark(stepAuthorized, state == string(contract.StateAuthorized))
	if oldNode != nil {
		_, cordoned := m[stepCordoned]
		mark(stepDown, cordoned && !framework.NodeReady(n))
		mark(stepUp, oldNode.Status.NodeInfo.BootID != n.Status.NodeInfo.BootID)
		_, up := m[stepUp]
		mark(stepUncordoned, up && state == "" && !n.Spec.Unschedulable)
	}
}

// timeline returns when each step of a node was seen.
func (w *watcher) timeline(node string) map[step]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[step]time.Time{}
	for s, t := range w.steps[node] {
		out[s] = t
	}
	return out
}

func newWatcher(h *harness.Harness, _ int) *watcher {
	return &watcher{h: h, changed: make(chan struct{}, 1), seen: map[string]bool{}, steps: map[string]map[step]time.Time{}}
}

func (w *watcher) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watcher) start(ctx context.Context) error {
	client := w.h.Cluster.Client
	nodeFactory := informers.NewSharedInformerFactory(client, 0)
	nodeInf := nodeFactory.Core().V1().Nodes().Informer()
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if n, ok := obj.(*corev1.Node); ok {
				w.observe(nil, n)
			}
			w.poke()
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Node)
			n, ok2 := newObj.(*corev1.Node)
			if ok1 && ok2 {
				w.observe(o, n)
			}
			w.poke()
		},
		DeleteFunc: func(any) { w.poke() },
	}
	if _, err := nodeInf.AddEventHandler(handler); err != nil {
		return err
	}
	w.nodes = nodeInf.GetIndexer()
	eventFactory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace("default"),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("involvedObject.kind", "Node").String()
		}))
	eventInf := eventFactory.Core().V1().Events().Informer()
	record := func(obj any) {
		e, ok := obj.(*corev1.Event)
		if !ok {
			return
		}
		w.mu.Lock()
		key := string(e.UID) + "/" + itoa(e.Count)
		if !w.seen[key] {
			w.seen[key] = true
			w.events = append(w.events, e)
		}
		w.mu.Unlock()
		w.poke()
	}
	if _, err := eventInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    record,
		UpdateFunc: func(_, n any) { record(n) },
	}); err != nil {
		return err
	}
	nodeFactory.Start(ctx.Done())
	eventFactory.Start(ctx.Done())
	nodeFactory.WaitForCacheSync(ctx.Done())
	eventFactory.WaitForCacheSync(ctx.Done())
	return nil
}

// node returns the cached Node, or nil.
func (w *watcher) node(name string) *corev1.Node {
	obj, ok, _ := w.nodes.GetByKey(name)
	if !ok {
		return nil
	}
	return obj.(*corev1.Node)
}

// sortedEvents returns the node events in the order they happened.
func (w *watcher) sortedEvents() []*corev1.Event {
	w.mu.Lock()
	evs := append([]*corev1.Event(nil), w.events...)
	w.mu.Unlock()
	sort.SliceStable(evs, func(i, j int) bool { return eventTime(evs[i]).Before(eventTime(evs[j])) })
	return evs
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	default:
		return e.CreationTimestamp.Time
	}
}

// done reports whether every host has rebooted at least once and its node
// is back in service: no pipeline state, schedulable, condition not True.
func (w *watcher) done(hosts []*nodesim.Node) bool {
	for _, host := range hosts {
		if len(host.Reboots()) == 0 {
			return false
		}
		n := w.node(host.Name())
		if n == nil || n.Spec.Unschedulable || n.Annotations[contract.AnnotationState] != "" {
			return false
		}
		if c := condition(n, contract.DefaultConditionType); c != nil && c.Status == corev1.ConditionTrue {
			return false
		}
	}
	return true
}

func condition(n *corev1.Node, typ string) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if string(n.Status.Conditions[i].Type) == typ {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}
