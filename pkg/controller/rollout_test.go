package controller

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// The admission pass and whole reboots of several nodes on the fixture:
// one step at a time, through admit and syncHandler, on a fake clock.

// requestedAt is requiring(name) with its reboot condition True since at
// (the order of the queue).
func requestedAt(name string, at time.Time) *v1.Node {
	n := requiring(name)
	c := contract.Condition(n, contract.DefaultConditionType)
	c.LastTransitionTime, c.LastHeartbeatTime = metav1.NewTime(at), metav1.NewTime(at)
	return n
}

// rebootAndFinish plays the host and the detector for a node whose reboot
// is authorized (a new boot ID, the condition False), then syncs it to the
// end of its reboot: Rebooted, then (no soak) Finish and the slot released.
func (f *fixture) rebootAndFinish(name string) []write {
	f.t.Helper()
	f.update(name, func(n *v1.Node) {
		n.Status.NodeInfo.BootID = name + "-boot-1"
		contract.Condition(n, contract.DefaultConditionType).Status = v1.ConditionFalse
	})
	var ws []write
	for range 2 {
		f.clock.Step(time.Second)
		f.sync(name)
		ws = append(ws, f.writes()...)
		f.refresh(name)
	}
	return ws
}

// Three nodes need a reboot, --max-concurrent 1: each is taken only when
// the one before has finished and given its slot back, in the order of
// their requests; each pod is evicted once (never deleted), the idle node
// is left alone, and every step is announced. (The whole controller, with
// its workers and a real kubelet's pods, is e2e/controller's test of the
// same name.)
func TestRollingRebootOneAtATime(t *testing.T) {
	names := []string{"n1", "n2", "n3"}
	clk := clocktesting.NewFakeClock(fixtureNow)
	f := newFixture(t, testConfig(1), clk,
		requestedAt("n1", fixtureNow.Add(-3*time.Hour)), requestedAt("n2", fixtureNow.Add(-2*time.Hour)),
		requestedAt("n3", fixtureNow.Add(-time.Hour)), testNode("idle", false),
		testPod("web-1", "n1"), testPod("web-2", "n2"), testPod("web-3", "n3"), testPod("web-4", "idle"))
	refreshAll := func() {
		for _, n := range append([]string{"idle"}, names...) {
			f.refresh(n)
		}
	}
	for i, name := range names {
		f.admit()
		wantWrites(t, f.writes(), "update configmaps "+contract.SlotsConfigMapName, "patch nodes "+name)
		refreshAll()
		f.admit() // one node out: nobody else is taken
		if ws := f.writes(); len(ws) != 0 {
			t.Fatalf("%s out, yet the admission pass wrote %v", name, ws)
		}
		wantWrites(t, f.syncDrained(name), fmt.Sprintf("create pods/eviction web-%d", i+1), "patch nodes "+name)
		f.refresh(name)
		wantWrites(t, f.rebootAndFinish(name), "patch nodes "+name, "patch nodes "+name, "update configmaps "+contract.SlotsConfigMapName)
		if !done(f.get(name)) {
			t.Fatalf("%s not done: %v", name, f.get(name).Annotations)
		}
	}
	f.admit()
	if ws := f.writes(); len(ws) != 0 {
		t.Fatalf("after the rollout the admission pass wrote %v", ws)
	}
	if f.api.deletes.Load() != 0 {
		t.Errorf("%d pod DELETEs", f.api.deletes.Load())
	}
	if v := testutil.ToFloat64(f.m.Reboots.WithLabelValues(ResultCompleted)); v != 3 {
		t.Errorf("reboots_total{completed} = %v", v)
	}
	evs := f.eventReasons()
	for _, r := range []string{contract.ReasonRebootQueued, contract.ReasonCordoned, contract.ReasonDraining, contract.ReasonDrained,
		contract.ReasonRebootAuthorized, contract.ReasonRebooted, contract.ReasonUncordoned, contract.ReasonRebootDone} {
		if !slices.Contains(evs, "Normal "+r) {
			t.Errorf("no %s event in %q", r, evs)
		}
	}
}

// Five nodes need a reboot, --max-concurrent 2: the admission pass takes
// the two oldest requests, and no more while they are out.
func TestMaxConcurrentTwo(t *testing.T) {
	var objs []runtime.Object
	for i := range 5 {
		objs = append(objs, requestedAt(fmt.Sprintf("n%d", i), fixtureNow.Add(-time.Duration(5-i)*time.Hour)))
	}
	f := newFixture(t, testConfig(2), clocktesting.NewFakeClock(fixtureNow), objs...)
	f.admit()
	slot := "update configmaps " + contract.SlotsConfigMapName
	wantWrites(t, f.writes(), slot, "patch nodes n0", slot, "patch nodes n1")
	for i := range 5 {
		f.refresh(fmt.Sprintf("n%d", i))
	}
	f.admit()
	if ws := f.writes(); len(ws) != 0 {
		t.Fatalf("two nodes out, yet the admission pass wrote %v", ws)
	}
	if got := slices.Sorted(maps.Keys(f.slotData())); !slices.Equal(got, []string{"n0", "n1"}) {
		t.Fatalf("slots %v, want n0 and n1", got)
	}
}

// A NotReady node blocks admission: nothing is taken, one RebootBlocked
// says why and reboot_blocked{NodeNotReady} is set; once it recovers, the
// next admission pass takes the waiting node.
func TestNotReadyNodeBlocksAdmission(t *testing.T) {
	sick := testNode("sick", false)
	sick.Status.Conditions[0].Status = v1.ConditionFalse
	f := newFixture(t, testConfig(1), clocktesting.NewFakeClock(fixtureNow), requiring("n1"), sick)
	f.admit()
	if ws := f.writes(); len(ws) != 0 {
		t.Fatalf("took a node while another is NotReady: %v", ws)
	}
	if evs := f.eventReasons(); !slices.Contains(evs, "Warning "+contract.ReasonRebootBlocked) {
		t.Errorf("no RebootBlocked event in %q", evs)
	}
	if v := testutil.ToFloat64(f.m.Blocked.WithLabelValues(decide.BlockedNotReady)); v != 1 {
		t.Errorf("reboot_blocked{%s} = %v", decide.BlockedNotReady, v)
	}
	f.update("sick", func(n *v1.Node) { n.Status.Conditions[0].Status = v1.ConditionTrue })
	f.admit()
	wantWrites(t, f.writes(), "update configmaps "+contract.SlotsConfigMapName, "patch nodes n1")
	if v := testutil.ToFloat64(f.m.Blocked.WithLabelValues(decide.BlockedNotReady)); v != 0 {
		t.Errorf("reboot_blocked{%s} = %v after the recovery", decide.BlockedNotReady, v)
	}
}

// --dry-run: the take and the drain are decided and announced (DryRun
// events), and nothing is written: no slot record, no patch, no eviction.
func TestDryRunWritesNothing(t *testing.T) {
	cfg := testConfig(2)
	cfg.DryRun = true
	f := newFixture(t, cfg, clocktesting.NewFakeClock(fixtureNow), requiring("n1"), testPod("web-1", "n1"),
		inState(requiring("n2"), contract.StateDraining, fixtureNow), testPod("web-2", "n2"))
	f.admit()
	f.sync("n2")
	if ws := f.writes(); len(ws) != 0 {
		t.Fatalf("dry run wrote %v", ws)
	}
	if _, err := f.api.CoreV1().ConfigMaps("nodereboot-system").Get(f.ctx, contract.SlotsConfigMapName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry run started a term on the slot record: %v", err)
	}
	var dry int
	for _, e := range f.eventReasons() {
		if e == "Normal "+contract.ReasonDryRun {
			dry++
		}
	}
	if dry != 2 {
		t.Errorf("%d DryRun events, want 2 (the take of n1, the drain of n2)", dry)
	}
}
