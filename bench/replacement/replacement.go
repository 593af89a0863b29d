// Package replacement measures, on a running cluster, the part of a node's
// reboot that Kubernetes itself sets: the time from the eviction of a pod
// to the moment its replacement is Ready elsewhere. `make bench` and
// `make demo` use it to compare a rollout with its physical limit (see
// docs/benchmarks.md).
package replacement

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Eviction is a pod seen leaving a node (its deletion started).
type Eviction struct {
	Pod  string
	Node string
	At   time.Time
}

// Watch watches the pods of one namespace: pods whose deletion starts are
// evictions, pods created after the watch started that become Ready are
// replacements.
type Watch struct {
	mu      sync.Mutex
	changed chan struct{}
	initial map[types.UID]bool      // the pods before the rollout
	leaving map[types.UID]bool      // pods whose deletion was seen
	readyAt map[types.UID]time.Time // when each pod was first seen Ready
	evicted []Eviction
}

// Start watches the namespace's pods until ctx ends; the pods there now are
// the workload before the rollout.
func Start(ctx context.Context, client kubernetes.Interface, namespace string) (*Watch, error) {
	w := &Watch{changed: make(chan struct{}), initial: map[types.UID]bool{}, leaving: map[types.UID]bool{}, readyAt: map[types.UID]time.Time{}}
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace))
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.seen,
		UpdateFunc: func(_, obj any) { w.seen(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				w.leave(p)
			}
		},
	}); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("replacement watch: pods of %s not synced: %w", namespace, ctx.Err())
	}
	// The pods of the first list are the workload before the rollout
	// (the handlers may see them later: they are told apart here).
	w.mu.Lock()
	for _, obj := range inf.GetStore().List() {
		w.initial[obj.(*corev1.Pod).UID] = true
	}
	w.mu.Unlock()
	return w, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (w *Watch) seen(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if p.DeletionTimestamp != nil {
		w.leave(p)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.readyAt[p.UID]; !ok && podReady(p) {
		w.readyAt[p.UID] = time.Now()
		w.broadcast()
	}
}

func (w *Watch) leave(p *corev1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.leaving[p.UID] || p.Spec.NodeName == "" {
		return
	}
	w.leaving[p.UID] = true
	w.evicted = append(w.evicted, Eviction{Pod: p.Namespace + "/" + p.Name, Node: p.Spec.NodeName, At: time.Now()})
	w.broadcast()
}

// broadcast wakes Wait; w.mu is held.
func (w *Watch) broadcast() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// Replacement is an eviction and how long its replacement took to be Ready.
type Replacement struct {
	Eviction
	Took time.Duration
}

// match pairs every eviction, in order, with the first replacement that
// became Ready after it and is not paired yet; w.mu is held.
func (w *Watch) match() (paired []Replacement, unpaired int) {
	ev := append([]Eviction(nil), w.evicted...)
	sort.Slice(ev, func(i, j int) bool { return ev[i].At.Before(ev[j].At) })
	var ready []time.Time
	for uid, at := range w.readyAt {
		if !w.initial[uid] {
			ready = append(ready, at)
		}
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i].Before(ready[j]) })
	j := 0
	for _, e := range ev {
		for j < len(ready) && ready[j].Before(e.At) {
			j++
		}
		if j == len(ready) {
			unpaired++
			continue
		}
		paired = append(paired, Replacement{Eviction: e, Took: ready[j].Sub(e.At)})
		j++
	}
	return paired, unpaired
}

// Wait returns every eviction seen so far with its replacement's time,
// waiting until each has a replacement Ready; an eviction without one by
// ctx's end is an error, never a zero.
func (w *Watch) Wait(ctx context.Context) ([]Replacement, error) {
	for {
		w.mu.Lock()
		paired, unpaired := w.match()
		ch := w.changed
		w.mu.Unlock()
		if unpaired == 0 {
			return paired, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%d evicted pods without a replacement Ready: %w", unpaired, ctx.Err())
		}
	}
}

// Mean is the mean time of the replacements (0 for none: no pod had to be
// replaced).
func Mean(rs []Replacement) time.Duration {
	if len(rs) == 0 {
		return 0
	}
	var sum time.Duration
	for _, r := range rs {
		sum += r.Took
	}
	return sum / time.Duration(len(rs))
}

// Limit is the physical limit of a rollout of nodes, at most concurrent at
// once: ceil(nodes/concurrent) waves, each as long as a reboot plus the mean
// time Kubernetes took to bring an evicted pod's replacement Ready.
func Limit(nodes, concurrent int, reboot time.Duration, rs []Replacement) time.Duration {
	waves := (nodes + concurrent - 1) / concurrent
	return time.Duration(waves) * (reboot + Mean(rs))
}
