package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/clock"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/slots"
)

// Pipeline annotations written by somebody who may patch Nodes, but not by
// the controller (no slot record names the nodes), are removed and never
// acted on: no drain, no eviction, no uncordon of somebody else's cordon.
func TestForgedPipelineAnnotationsAreResetNotActedOn(t *testing.T) {
	forged := func(n *v1.Node, cordon bool) *v1.Node {
		n.Annotations[contract.AnnotationState] = string(contract.StateDraining)
		n.Annotations[contract.AnnotationStateSince] = contract.FormatTime(time.Now().Add(-time.Hour))
		n.Annotations[contract.AnnotationCordonedByUs] = "true"
		n.Spec.Unschedulable = cordon
		return n
	}
	// The controller has run before: its slot record exists, and names
	// no node.
	record := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: contract.SlotsConfigMapName, Namespace: "nodereboot-system",
		Annotations: map[string]string{contract.AnnotationTerm: "1", contract.AnnotationHolder: "earlier"}}}
	f := newFakeAPI(t, forged(testNode("n1", false), false), forged(testNode("n2", false), true), forged(testNode("n3", false), false),
		testPod("web-1", "n1"), testPod("web-2", "n2"), testPod("web-3", "n3"), record)
	_, m, rec, ctx := startController(t, f, testConfig(1))
	clean := func(n *v1.Node) bool {
		for _, k := range []string{contract.AnnotationState, contract.AnnotationStateSince, contract.AnnotationCordonedByUs} {
			if _, ok := n.Annotations[k]; ok {
				return false
			}
		}
		return true
	}
	waitAll(ctx, t, f, []string{"n1", "n2", "n3"}, clean, "forged annotations removed")
	for _, name := range []string{"n1", "n2", "n3"} {
		n, _ := f.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if want := name == "n2"; n.Spec.Unschedulable != want {
			t.Errorf("%s: unschedulable %v, want %v (the cordon is left as it was)", name, n.Spec.Unschedulable, want)
		}
	}
	f.mu.Lock()
	evictions := len(f.evictions)
	f.mu.Unlock()
	if evictions != 0 {
		t.Fatalf("%d pods evicted for forged states", evictions)
	}
	var warned int
	for _, e := range eventsOf(rec) {
		if strings.HasPrefix(e, "Warning "+contract.ReasonInvalidAnnotation) && strings.Contains(e, "holds no slot") {
			warned++
		}
	}
	if warned != 3 {
		t.Errorf("%d InvalidAnnotation warnings naming the missing slot, want 3", warned)
	}
	if got := testutil.ToFloat64(m.InvalidAnnotations); got != 3 {
		t.Errorf("invalid annotations metric %v, want 3", got)
	}
}

// A new leader starts a term on the slot record and writes it onto every
// node holding a slot before it decides anything: a write the deposed
// leader still has in flight for such a node, guarded by the version it
// read, is refused.
func TestNewLeaderFencesTheNodesHoldingSlots(t *testing.T) {
	n1 := testNode("n1", true)
	n1.Annotations[contract.AnnotationState] = string(contract.StateDraining)
	n1.Annotations[contract.AnnotationStateSince] = contract.FormatTime(time.Now())
	n1.Annotations[contract.AnnotationCordonedByUs] = "true"
	n1.Spec.Unschedulable = true
	record := &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: contract.SlotsConfigMapName, Namespace: "nodereboot-system",
			Annotations: map[string]string{contract.AnnotationTerm: "4", contract.AnnotationHolder: "old"}},
		Data: map[string]string{"n1": slots.Slot{Term: 4, Since: time.Now()}.String()},
	}
	f := newFakeAPI(t, n1, testNode("n2", true), record)
	seen, _ := f.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	_, _, _, ctx := startController(t, f, testConfig(1))
	waitAll(ctx, t, f, []string{"n1"}, func(n *v1.Node) bool { return n.Annotations[contract.AnnotationTerm] == "5" }, "n1 fenced in term 5")
	// The deposed leader's authorization of n1, decided on what it saw.
	authz := "n1-boot-0"
	patch, _ := (&contract.Patch{ResourceVersion: seen.ResourceVersion, Annotations: map[string]*string{contract.AnnotationRebootAuthorized: &authz}}).MergePatch()
	_, err := f.CoreV1().Nodes().Patch(ctx, "n1", types.MergePatchType, patch, metav1.PatchOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("the deposed leader's write: %v, want a conflict", err)
	}
	cm, err := f.CoreV1().ConfigMaps("nodereboot-system").Get(ctx, contract.SlotsConfigMapName, metav1.GetOptions{})
	if err != nil || cm.Annotations[contract.AnnotationTerm] != "5" {
		t.Fatalf("record %v, %v: want term 5", cm, err)
	}
}

// The first start with a slot record (an upgrade) adopts the nodes already
// in the pipeline, but never more than --max-concurrent: the others are
// reset like any state the controller did not write.
func TestFirstStartAdoptsAtMostMaxConcurrent(t *testing.T) {
	var objs []runtime.Object
	for i, name := range []string{"n1", "n2", "n3"} {
		n := testNode(name, false)
		n.Annotations[contract.AnnotationState] = string(contract.StateDraining)
		n.Annotations[contract.AnnotationStateSince] = contract.FormatTime(time.Now().Add(time.Duration(i-3) * time.Minute))
		n.Annotations[contract.AnnotationCordonedByUs] = "true"
		n.Spec.Unschedulable = true
		objs = append(objs, n)
	}
	f := newFakeAPI(t, objs...)
	_, _, _, ctx := startController(t, f, testConfig(1))
	notStated := func(n *v1.Node) bool { _, ok := n.Annotations[contract.AnnotationState]; return !ok }
	waitAll(ctx, t, f, []string{"n2", "n3"}, notStated, "n2 and n3 reset")
	cm, err := f.CoreV1().ConfigMaps("nodereboot-system").Get(ctx, contract.SlotsConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.Data) != 1 || cm.Data["n1"] == "" {
		t.Fatalf("slots %v, want n1 alone (the longest in the pipeline)", cm.Data)
	}
}

// A worker may hold a version of a node read before the controller took
// it while the take lands and the informer reports it. That stale, idle
// version must not give the slot back: the controller would then take its
// own take for a forged state and reset it, leaving the node cordoned
// (found by the fault suite, leader-killed-mid-drain: I4). The informer's
// cache is seeded and the handler called directly, as sample-controller's
// tests do.
func TestStaleVersionAfterTheTakeKeepsTheSlot(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFakeAPI(t, testNode("n1", true))
	c := New(f, record.NewFakeRecorder(100), clock.RealClock{}, testConfig(1), NewMetrics(prometheus.NewRegistry()))
	if _, err := c.slots.Acquire(ctx, time.Now(), func() []string { return nil }); err != nil {
		t.Fatal(err)
	}
	before, _ := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	indexer := c.factory.Core().V1().Nodes().Informer().GetIndexer()
	if err := indexer.Add(before); err != nil {
		t.Fatal(err)
	}
	if err := c.take(ctx, before); err != nil {
		t.Fatal(err)
	}
	// While the cache shows the version the take was decided on, the
	// reconciler decides nothing (a write would be refused, or refuse the
	// take); the take's watch event requeues the node.
	f.ClearActions()
	if err := c.syncHandler(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	for _, a := range f.Actions() {
		if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
			t.Fatalf("%s %s while the take is in flight", v, a.GetResource().Resource)
		}
	}
	if c.admission.Len() != 0 {
		t.Fatal("the node was decided on (Queue) while the take is in flight")
	}
	taken, _ := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	c.own.seen(taken) // the informer saw the take; the cache still holds the older version
	if err := c.syncHandler(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if _, held := c.slots.Get("n1"); !held {
		t.Fatal("the slot was given back on a version read before the take")
	}
	if n, _ := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); n.Annotations[contract.AnnotationState] != string(contract.StateDraining) {
		t.Fatalf("the take was undone: %v", n.Annotations)
	}
	// The cache catches up: the take is seen, the slot kept.
	if err := indexer.Update(taken); err != nil {
		t.Fatal(err)
	}
	if err := c.syncHandler(ctx, "n1"); err != nil && !apierrors.IsConflict(err) {
		t.Fatal(err)
	}
	if _, held := c.slots.Get("n1"); !held {
		t.Fatal("the slot was given back while the node is Draining")
	}
}
