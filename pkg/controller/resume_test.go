package controller

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// A leader that truly resumes (README: "All progress lives in node
// annotations, so a new leader resumes where the old one stopped"): the
// old leader drives a node through every state; at each one it is killed
// (its memory dropped) and a fresh controller is started on what the API
// holds at that moment (the Nodes, the slot record, the pods), in a new
// term, at the same time on the fake clock. The fresh controller must
// decide exactly what the old one decides there and write the same
// patches: a decision depends only on what the Node and the slot record
// carry.

// snapshot copies what the API holds that the controller reads.
func (f *fixture) snapshot() []runtime.Object {
	f.t.Helper()
	ctx := context.Background()
	var out []runtime.Object
	nodes, err := f.api.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	for i := range nodes.Items {
		out = append(out, nodes.Items[i].DeepCopy())
	}
	pods, err := f.api.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp != nil {
			f.t.Fatalf("snapshot while pod %s terminates", pods.Items[i].Name)
		}
		out = append(out, pods.Items[i].DeepCopy())
	}
	cms, err := f.api.CoreV1().ConfigMaps("nodereboot-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	for i := range cms.Items {
		out = append(out, cms.Items[i].DeepCopy())
	}
	return out
}

// decision is what the controller decides for a cached node now.
func (f *fixture) decision(name string) decide.Action {
	f.t.Helper()
	n, err := f.c.nodes.Get(name)
	if err != nil {
		f.t.Fatal(err)
	}
	return decide.Node(f.c.input(n))
}

// waitPodGone waits for the API to delete a pod (the kubelet of fakeAPI
// removes an evicted pod).
func (f *fixture) waitPodGone(ns, name string) {
	f.t.Helper()
	w, err := f.api.CoreV1().Pods(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	defer w.Stop()
	if _, err := f.api.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-w.ResultChan():
			if p, ok := ev.Object.(*v1.Pod); ok && ev.Type == watch.Deleted && p.Name == name {
				return
			}
		case <-deadline:
			f.t.Fatalf("pod %s/%s not deleted within 10s", ns, name)
		}
	}
}

// normalized drops from writes what differs between two controllers by
// construction: the resourceVersion guarding a patch (the new leader's
// fence wrote the node).
func normalized(ws []write) []string {
	var out []string
	for _, w := range ws {
		if meta, ok := w.body["metadata"].(map[string]any); ok {
			meta = maps.Clone(meta)
			delete(meta, "resourceVersion")
			w.body = maps.Clone(w.body)
			w.body["metadata"] = meta
		}
		out = append(out, w.String())
	}
	return out
}

// resume runs a step on the old leader and on a fresh one started on a
// snapshot of the API taken just before, and fails unless both decide
// the same for node and write the same.
func resume(t *testing.T, old *fixture, cfg Config, stop, node string, step func(*fixture) []write) {
	t.Helper()
	fresh := newFixture(t, cfg, clocktesting.NewFakeClock(old.clock.Now()), old.snapshot()...)
	if fresh.c.slots.Term() <= old.c.slots.Term() {
		t.Fatalf("%s: the new leader's term %d is not after %d", stop, fresh.c.slots.Term(), old.c.slots.Term())
	}
	decided := old.decision(node)
	if n := fresh.decision(node); !reflect.DeepEqual(decided, n) {
		t.Fatalf("%s: the new leader decides\n  %v\nthe old one\n  %v", stop, n, decided)
	}
	wo, wn := normalized(step(old)), normalized(step(fresh))
	if !slices.Equal(wo, wn) {
		t.Fatalf("%s: the new leader writes\n  %q\nthe old one\n  %q", stop, wn, wo)
	}
	if o, n := slices.Sorted(maps.Keys(old.slotData())), slices.Sorted(maps.Keys(fresh.slotData())); !slices.Equal(o, n) {
		t.Fatalf("%s: the new leader's slots %v, the old one's %v", stop, n, o)
	}
	t.Logf("%s: both decide %s and write %q", stop, decided.Kind, wo)
}

func TestNewLeaderDecidesAsTheOldOneInEveryState(t *testing.T) {
	cfg := testConfig(1)
	cfg.Decide.PostRebootSoak = 5 * time.Minute
	// n2 asks by hand, after n1's condition: n1 goes first.
	n2 := testNode("n2", false)
	n2.Annotations[contract.AnnotationRebootRequested] = "kubectl-nodereboot " + contract.FormatTime(fixtureNow.Add(-time.Minute))
	clk := clocktesting.NewFakeClock(fixtureNow)
	old := newFixture(t, cfg, clk, requiring("n1"), n2, testPod("web-1", "n1"), testNode("idle", false))
	admit := func(f *fixture) []write { f.admit(); return f.writes() }
	sync := func(f *fixture) []write { f.sync("n1"); return f.writes() }
	refresh := func() { old.refresh("n1"); old.refresh("n2") }

	resume(t, old, cfg, "request queued", "n1", admit)
	refresh()
	resume(t, old, cfg, "Draining", "n1", func(f *fixture) []write {
		return f.syncUntil("n1", func(w write) bool { return w.is("create", "pods", "eviction") })
	})
	old.waitPodGone("default", "web-1")
	clk.Step(10 * time.Second)
	resume(t, old, cfg, "drained", "n1", func(f *fixture) []write { return f.syncDrained("n1") })
	refresh()
	clk.Step(10 * time.Second)
	resume(t, old, cfg, "Authorized", "n1", sync)
	old.update("n1", func(n *v1.Node) { n.Annotations[contract.AnnotationRebooting] = n.Status.NodeInfo.BootID })
	resume(t, old, cfg, "rebooting committed", "n1", sync)
	clk.Step(time.Minute)
	old.update("n1", func(n *v1.Node) {
		delete(n.Annotations, contract.AnnotationRebooting)
		n.Status.NodeInfo.BootID = "n1-boot-1"
	})
	resume(t, old, cfg, "Rebooted (new boot seen)", "n1", sync)
	refresh()
	clk.Step(time.Minute)
	resume(t, old, cfg, "soaking", "n1", sync)
	clk.Step(5 * time.Minute)
	resume(t, old, cfg, "soaked", "n1", sync)
	refresh()
	resume(t, old, cfg, "done, next in line", "n2", admit)
}

func TestNewLeaderDecidesAsTheOldOneWhenFailed(t *testing.T) {
	cfg := testConfig(1)
	clk := clocktesting.NewFakeClock(fixtureNow)
	old := newFixture(t, cfg, clk, authorizedFor(requiring("n1"), "n1-boot-0", fixtureNow), slotRecord(1, fixtureNow, "n1"))
	sync := func(f *fixture) []write { f.sync("n1"); return f.writes() }
	clk.Step(cfg.Decide.RebootTimeout)
	resume(t, old, cfg, "reboot timed out", "n1", sync)
	old.refresh("n1")
	clk.Step(time.Hour)
	resume(t, old, cfg, "Failed", "n1", sync)
}
