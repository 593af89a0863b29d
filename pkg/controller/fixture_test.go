package controller

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/slots"
)

// fixture is sample-controller's test fixture for the controller: a fake
// clientset (fakeAPI: resourceVersions and conflicts as an API server
// has them), the node informer's cache seeded by hand (no informer runs),
// a fake clock passed in, and the reconciler (syncHandler) and the
// admission pass (admit) called directly. What the controller did is read
// from the client's actions. Whole-controller behaviour (workers, the real
// clock) is e2e/controller's.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	api   *fakeAPI
	clock *clocktesting.FakeClock
	rec   *record.FakeRecorder
	m     *Metrics
	c     *Controller
	nodes cache.Indexer
}

// fixtureNow is the fake clock's start: a whole second, as the
// annotations' RFC 3339 timestamps have it.
var fixtureNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// newFixture builds a controller on objs at clk's time, seeds its node
// cache with the nodes among objs, and starts its term on the slot record
// (fencing the nodes that hold slots) as Run does before any decision. The
// client's actions start empty after that.
func newFixture(t *testing.T, cfg Config, clk *clocktesting.FakeClock, objs ...runtime.Object) *fixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	f := &fixture{t: t, ctx: ctx, api: newFakeAPI(t, objs...), clock: clk, rec: record.NewFakeRecorder(1000), m: NewMetrics(prometheus.NewRegistry())}
	f.c = New(f.api, f.rec, clk, cfg, f.m)
	f.nodes = f.c.factory.Core().V1().Nodes().Informer().GetIndexer()
	t.Cleanup(func() {
		cancel()
		f.c.queue.ShutDown()
		f.c.admission.ShutDown()
		f.c.pods.StopAll()
	})
	for _, o := range objs {
		if n, ok := o.(*v1.Node); ok {
			if err := f.nodes.Add(f.get(n.Name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.c.startTerm(ctx); err != nil {
		t.Fatalf("start term: %v", err)
	}
	for _, o := range objs {
		if n, ok := o.(*v1.Node); ok {
			f.refresh(n.Name) // the fence's writes reach the cache
		}
	}
	f.api.ClearActions()
	return f
}

// get reads a node from the API (the fake's tracker).
func (f *fixture) get(name string) *v1.Node {
	f.t.Helper()
	n, err := f.api.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// refresh delivers the API's version of a node to the cache, as the
// informer would (its update handler included).
func (f *fixture) refresh(name string) *v1.Node {
	f.t.Helper()
	n := f.get(name)
	old, _, _ := f.nodes.GetByKey(name)
	if err := f.nodes.Update(n); err != nil {
		f.t.Fatal(err)
	}
	if old != nil {
		f.c.nodeHandler().OnUpdate(old, n)
	}
	return n
}

// update changes a node on the API (as the kubelet or the detector would)
// and delivers it to the cache. The write is not the controller's: it is
// left out of the client's actions.
func (f *fixture) update(name string, change func(*v1.Node)) {
	f.t.Helper()
	if ws := f.writes(); len(ws) > 0 {
		f.t.Fatalf("writes not looked at before an update: %v", ws)
	}
	n := f.get(name).DeepCopy()
	change(n)
	if _, err := f.api.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
	f.api.ClearActions()
	f.refresh(name)
}

// sync runs the reconciler once for a node.
func (f *fixture) sync(name string) {
	f.t.Helper()
	if err := f.c.syncHandler(f.ctx, name); err != nil {
		f.t.Fatalf("sync %s: %v", name, err)
	}
}

// admit runs the admission pass once.
func (f *fixture) admit() {
	f.t.Helper()
	if err := f.c.admit(f.ctx); err != nil {
		f.t.Fatalf("admission: %v", err)
	}
}

// emptyQueue forgets what is queued, so that waitQueued sees only what is
// added from now on.
func (f *fixture) emptyQueue() {
	for f.c.queue.Len() > 0 {
		k, _ := f.c.queue.Get()
		f.c.queue.Done(k)
		f.c.queue.Forget(k)
	}
}

// waitQueued waits until key is added to the queue (by a watch: the pod
// watch's first list, a pod's change), with a deadline.
func (f *fixture) waitQueued(key string) {
	f.t.Helper()
	got := make(chan struct{})
	go func() {
		for {
			k, shutdown := f.c.queue.Get()
			if shutdown {
				return
			}
			f.c.queue.Done(k)
			if k == key {
				close(got)
				return
			}
		}
	}()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		f.t.Fatalf("%s not queued within 10s", key)
	}
}

// syncUntil syncs a node, waiting for it to be queued again (by its pod
// watch) between syncs, until a sync makes a write that stop accepts; it
// returns the writes up to then.
func (f *fixture) syncUntil(name string, stop func(write) bool) []write {
	f.t.Helper()
	var all []write
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		f.emptyQueue()
		f.sync(name)
		ws := f.writes()
		all = append(all, ws...)
		if slices.ContainsFunc(ws, stop) {
			return all
		}
		f.waitQueued(name)
	}
	f.t.Fatalf("%s: no such write within 20s of syncs: %v", name, all)
	return nil
}

// syncDrained syncs a draining node until it is written (its drain has
// ended); it returns the writes.
func (f *fixture) syncDrained(name string) []write {
	f.t.Helper()
	return f.syncUntil(name, func(w write) bool { return w.is("patch", "nodes", "") })
}

// write is one action of the client that changes something.
type write struct {
	verb, resource, subresource, name string
	// body is a patch's body, decoded.
	body map[string]any
	// object is what a create or an update sends.
	object metav1.Object
}

func (w write) is(verb, resource, subresource string) bool {
	return w.verb == verb && w.resource == resource && w.subresource == subresource
}

func (w write) String() string {
	s := w.verb + " " + w.resource
	if w.subresource != "" {
		s += "/" + w.subresource
	}
	s += " " + w.name
	if w.body != nil {
		b, _ := json.Marshal(w.body)
		s += " " + string(b)
	}
	return s
}

// writes returns the client's writes since the last call (reads and
// watches left out) and clears the actions.
func (f *fixture) writes() []write {
	f.t.Helper()
	var out []write
	for _, a := range f.api.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		w := write{verb: a.GetVerb(), resource: a.GetResource().Resource, subresource: a.GetSubresource()}
		switch a := a.(type) {
		case k8stesting.PatchAction:
			w.name = a.GetName()
			if err := json.Unmarshal(a.GetPatch(), &w.body); err != nil {
				f.t.Fatalf("patch body %s: %v", a.GetPatch(), err)
			}
		case k8stesting.CreateAction: // and UpdateAction, the same interface
			w.object = a.GetObject().(metav1.Object)
			w.name = w.object.GetName()
		case k8stesting.DeleteAction:
			w.name = a.GetName()
		}
		out = append(out, w)
	}
	f.api.ClearActions()
	return out
}

// slotRecord is the slot record of a controller that ran before in term,
// with the given nodes holding slots taken at since.
func slotRecord(term int64, since time.Time, nodes ...string) *v1.ConfigMap {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: contract.SlotsConfigMapName, Namespace: "nodereboot-system",
		Annotations: map[string]string{contract.AnnotationTerm: strconv.FormatInt(term, 10), contract.AnnotationHolder: "earlier"}}, Data: map[string]string{}}
	for _, n := range nodes {
		cm.Data[n] = slots.Slot{Term: term, Since: since}.String()
	}
	return cm
}

// slotData returns the slot record's nodes as stored.
func (f *fixture) slotData() map[string]string {
	f.t.Helper()
	cm, err := f.api.CoreV1().ConfigMaps("nodereboot-system").Get(context.Background(), contract.SlotsConfigMapName, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return cm.Data
}

// annotations returns a patch body's annotations (nil values: removed).
func annotations(body map[string]any) map[string]any {
	meta, _ := body["metadata"].(map[string]any)
	a, _ := meta["annotations"].(map[string]any)
	return a
}

// unschedulable returns a patch body's spec.unschedulable, if it has one.
func unschedulable(body map[string]any) (bool, bool) {
	spec, ok := body["spec"].(map[string]any)
	if !ok {
		return false, false
	}
	u, ok := spec["unschedulable"].(bool)
	return u, ok
}

// eventReasons returns the reasons of the events recorded so far.
func (f *fixture) eventReasons() []string {
	var out []string
	for _, e := range eventsOf(f.rec) {
		if parts := strings.SplitN(e, " ", 3); len(parts) >= 2 {
			out = append(out, parts[0]+" "+parts[1])
		}
	}
	return out
}
