package controller

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/controller/slots"
)

// The reconciler and the admission pass called directly on seeded caches
// and a fake clock (fixture), each step asserted on the client's writes.

// requiring is a Ready node whose reboot condition is True since an hour
// before fixtureNow.
func requiring(name string) *v1.Node {
	n := testNode(name, true)
	hourAgo := metav1.NewTime(fixtureNow.Add(-time.Hour))
	for i := range n.Status.Conditions {
		n.Status.Conditions[i].LastTransitionTime, n.Status.Conditions[i].LastHeartbeatTime = hourAgo, hourAgo
	}
	return n
}

// inState puts a node in a pipeline state since at, cordoned by us.
func inState(n *v1.Node, s contract.State, at time.Time) *v1.Node {
	n.Annotations[contract.AnnotationState] = string(s)
	n.Annotations[contract.AnnotationStateSince] = contract.FormatTime(at)
	n.Annotations[contract.AnnotationCordonedByUs] = "true"
	n.Spec.Unschedulable = true
	return n
}

// authorizedFor marks a node Authorized for the reboot of boot.
func authorizedFor(n *v1.Node, boot string, at time.Time) *v1.Node {
	inState(n, contract.StateAuthorized, at)
	n.Annotations[contract.AnnotationRebootAuthorized] = boot
	n.Annotations[contract.AnnotationStateReason] = contract.AuthorizedReason(boot)
	return n
}

// body decodes a JSON patch body written as a test's expectation.
func body(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return m
}

func wantWrites(t *testing.T, got []write, want ...string) {
	t.Helper()
	var g []string
	for _, w := range got {
		s := w.verb + " " + w.resource
		if w.subresource != "" {
			s += "/" + w.subresource
		}
		g = append(g, s+" "+w.name)
	}
	if !slices.Equal(g, want) {
		t.Fatalf("writes %q, want %q (in this order)", g, want)
	}
}

// The take: the slot is recorded (a compare-and-swap of the record) before
// the node is written, then one patch cordons the node and sets Draining,
// guarded by the version the decision was made on.
func TestTakeRecordsTheSlotThenCordons(t *testing.T) {
	f := newFixture(t, testConfig(1), clocktesting.NewFakeClock(fixtureNow), requiring("n1"), testNode("idle", false))
	rv := f.get("n1").ResourceVersion
	record, err := f.api.CoreV1().ConfigMaps("nodereboot-system").Get(f.ctx, contract.SlotsConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.admit()
	ws := f.writes()
	wantWrites(t, ws, "update configmaps "+contract.SlotsConfigMapName, "patch nodes n1")
	// A compare-and-swap: the update names the version of the record it
	// was made from (a concurrent writer's makes it fail).
	if got := ws[0].object.GetResourceVersion(); got == "" || got != record.ResourceVersion {
		t.Errorf("slot record update with resourceVersion %q, want the record's %q", got, record.ResourceVersion)
	}
	want := body(t, `{"metadata":{"resourceVersion":"`+rv+`","annotations":{
		"nodereboot.io/state":"Draining","nodereboot.io/state-since":"`+contract.FormatTime(fixtureNow)+`",
		"nodereboot.io/state-reason":null,"nodereboot.io/not-before":null,"nodereboot.io/cordoned-by-us":"true"}},
		"spec":{"unschedulable":true}}`)
	if !reflect.DeepEqual(ws[1].body, want) {
		t.Errorf("take patch %v, want %v", ws[1], want)
	}
	s, err := slots.ParseSlot(f.slotData()["n1"])
	if err != nil || s.Term != f.c.slots.Term() || !s.Since.Equal(fixtureNow) {
		t.Errorf("slot %v (%v), want term %d since %s", s, err, f.c.slots.Term(), fixtureNow)
	}
	if got := f.eventReasons(); !slices.Equal(got, []string{"Normal " + contract.ReasonCordoned, "Normal " + contract.ReasonDraining}) {
		t.Errorf("events %q", got)
	}
}

// Draining: the pods are evicted (the eviction API, never a DELETE), and
// once they are gone the reboot of the current boot is authorized.
func TestDrainEvictsThenAuthorizes(t *testing.T) {
	n := inState(requiring("n1"), contract.StateDraining, fixtureNow)
	f := newFixture(t, testConfig(1), clocktesting.NewFakeClock(fixtureNow.Add(10*time.Second)), n,
		testPod("web-1", "n1"), slotRecord(1, fixtureNow, "n1"))
	f.refresh("n1")
	ws := f.syncDrained("n1")
	wantWrites(t, ws, "create pods/eviction web-1", "patch nodes n1")
	now := contract.FormatTime(fixtureNow.Add(10 * time.Second))
	if got, want := annotations(ws[1].body), annotations(body(t, `{"metadata":{"annotations":{
		"nodereboot.io/reboot-authorized":"n1-boot-0","nodereboot.io/state":"Authorized",
		"nodereboot.io/state-since":"`+now+`","nodereboot.io/state-reason":"`+contract.AuthorizedReason("n1-boot-0")+`"}}}`)); !reflect.DeepEqual(got, want) {
		t.Errorf("authorization %v, want %v", got, want)
	}
	if _, has := unschedulable(ws[1].body); has {
		t.Errorf("the authorization touches the cordon: %v", ws[1])
	}
	if f.api.deletes.Load() != 0 {
		t.Errorf("pod DELETE during the drain")
	}
}

// After the reboot: the new boot is marked Rebooted, then (no soak) the
// node is uncordoned and its state cleared in one patch, and only then is
// its slot given back.
func TestRebootedUncordonsThenReleasesTheSlot(t *testing.T) {
	n := authorizedFor(requiring("n1"), "n1-boot-0", fixtureNow)
	n.Status.NodeInfo.BootID = "n1-boot-1"
	clk := clocktesting.NewFakeClock(fixtureNow.Add(3 * time.Minute))
	f := newFixture(t, testConfig(1), clk, n, slotRecord(1, fixtureNow, "n1"))
	f.sync("n1")
	ws := f.writes()
	wantWrites(t, ws, "patch nodes n1")
	if got := annotations(ws[0].body); !reflect.DeepEqual(got, map[string]any{
		contract.AnnotationState: "Rebooted", contract.AnnotationStateSince: contract.FormatTime(clk.Now())}) {
		t.Errorf("rebooted patch %v", ws[0])
	}
	rebootedAt := clk.Now()
	f.refresh("n1")
	clk.Step(time.Second)
	f.sync("n1")
	ws = f.writes()
	wantWrites(t, ws, "patch nodes n1", "update configmaps "+contract.SlotsConfigMapName)
	if u, has := unschedulable(ws[0].body); !has || u {
		t.Errorf("finish does not uncordon: %v", ws[0])
	}
	ann := annotations(ws[0].body)
	for _, k := range []string{contract.AnnotationState, contract.AnnotationStateSince, contract.AnnotationCordonedByUs, contract.AnnotationRebootAuthorized} {
		if v, ok := ann[k]; !ok || v != nil {
			t.Errorf("finish leaves %s: %v", k, ws[0])
		}
	}
	if ann[contract.AnnotationLastReboot] != contract.FormatTime(rebootedAt) {
		t.Errorf("last-reboot %v, want %s (when the new boot was seen)", ann[contract.AnnotationLastReboot], contract.FormatTime(rebootedAt))
	}
	if _, held := f.slotData()["n1"]; held {
		t.Errorf("slot kept after the finish: %v", f.slotData())
	}
	if v := testutil.ToFloat64(f.m.Reboots.WithLabelValues(ResultCompleted)); v != 1 {
		t.Errorf("reboots_total{completed} = %v", v)
	}
}

// Pipeline annotations that no slot of the record backs (somebody else
// wrote them) are removed in one patch; nothing is evicted and the
// cordon is left as it is.
func TestForeignAnnotationsAreReset(t *testing.T) {
	n := inState(requiring("n1"), contract.StateDraining, fixtureNow)
	n.Spec.Unschedulable = false
	f := newFixture(t, testConfig(1), clocktesting.NewFakeClock(fixtureNow), n, testPod("web-1", "n1"), slotRecord(1, fixtureNow))
	wantReset(t, f, "n1", contract.AnnotationState, contract.AnnotationStateSince, contract.AnnotationCordonedByUs)
}

// An unknown state on a schedulable node, with an authorization: both
// removed in one patch, never acted on; one InvalidAnnotation warning and
// invalid_annotations_total counts it.
func TestGarbageIsReset(t *testing.T) {
	n := testNode("n1", false)
	n.Annotations[contract.AnnotationState] = "Exploding"
	n.Annotations[contract.AnnotationRebootAuthorized] = n.Status.NodeInfo.BootID
	f := newFixture(t, testConfig(1), clocktesting.NewFakeClock(fixtureNow), n)
	wantReset(t, f, "n1", contract.AnnotationState, contract.AnnotationRebootAuthorized)
}

// wantReset syncs a node whose annotations are to be reset and checks the
// reset: one patch that removes keys and leaves the cordon alone, one
// InvalidAnnotation warning, invalid_annotations_total 1.
func wantReset(t *testing.T, f *fixture, name string, keys ...string) {
	t.Helper()
	f.sync(name)
	ws := f.writes()
	wantWrites(t, ws, "patch nodes "+name)
	ann := annotations(ws[0].body)
	for _, k := range keys {
		if v, ok := ann[k]; !ok || v != nil {
			t.Errorf("%s not removed: %v", k, ws[0])
		}
	}
	if _, has := unschedulable(ws[0].body); has {
		t.Errorf("the reset touches the cordon: %v", ws[0])
	}
	if got := f.eventReasons(); !slices.Equal(got, []string{"Warning " + contract.ReasonInvalidAnnotation}) {
		t.Errorf("events %q", got)
	}
	if v := testutil.ToFloat64(f.m.InvalidAnnotations); v != 1 {
		t.Errorf("invalid_annotations_total = %v", v)
	}
}

// A node somebody else cordoned goes through the whole pipeline without
// the controller ever claiming or undoing the cordon.
func TestSomebodyElsesCordonIsNeverUndone(t *testing.T) {
	n := requiring("n1")
	n.Spec.Unschedulable = true
	clk := clocktesting.NewFakeClock(fixtureNow)
	f := newFixture(t, testConfig(1), clk, n)
	check := func(ws []write) {
		t.Helper()
		for _, w := range ws {
			if !w.is("patch", "nodes", "") {
				continue
			}
			if u, has := unschedulable(w.body); has && !u {
				t.Fatalf("uncordoned: %v", w)
			}
			if v, ok := annotations(w.body)[contract.AnnotationCordonedByUs]; ok && v != nil {
				t.Fatalf("claims the cordon: %v", w)
			}
		}
	}
	f.admit()
	check(f.writes())
	f.refresh("n1")
	check(f.syncDrained("n1"))
	f.update("n1", func(n *v1.Node) { n.Status.NodeInfo.BootID = "n1-boot-1" })
	for i := 0; i < 2; i++ {
		clk.Step(time.Second)
		f.sync("n1")
		check(f.writes())
		f.refresh("n1")
	}
	got := f.get("n1")
	if _, stated := got.Annotations[contract.AnnotationState]; stated || got.Annotations[contract.AnnotationLastReboot] == "" {
		t.Fatalf("reboot not finished: %v", got.Annotations)
	}
	if !got.Spec.Unschedulable {
		t.Fatal("an administrator's cordon was undone")
	}
}

// A drain that a disruption budget refuses: the eviction is tried again
// once per --eviction-retry-delay of the clock (never a hot loop, never a
// DELETE), and at --drain-timeout the node is given back: uncordoned, with
// a not-before, and its slot released.
func TestPDBBlockedDrainFailsAndUncordons(t *testing.T) {
	n := inState(requiring("n1"), contract.StateDraining, fixtureNow)
	cfg := testConfig(1)
	cfg.Decide.DrainTimeout = 2 * time.Second
	cfg.Drain.RetryDelay = 500 * time.Millisecond
	clk := clocktesting.NewFakeClock(fixtureNow)
	f := newFixture(t, cfg, clk, n, testPod("web-1", "n1"), slotRecord(1, fixtureNow, "n1"))
	f.api.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	})
	attempts := func(ws []write) int {
		c := 0
		for _, w := range ws {
			if w.is("create", "pods", "eviction") {
				c++
			}
		}
		return c
	}
	// The first pass, once the pod watch has listed: one attempt.
	if got := attempts(f.syncUntil("n1", func(w write) bool { return w.is("create", "pods", "eviction") })); got != 1 {
		t.Fatalf("%d eviction attempts in the first pass, want 1", got)
	}
	var last []write
	for i := 1; i <= 4; i++ {
		// Before the retry is due: no attempt.
		f.sync("n1")
		if ws := f.writes(); len(ws) != 0 {
			t.Fatalf("at +%s: writes %v before the retry is due", clk.Since(fixtureNow), ws)
		}
		clk.Step(cfg.Drain.RetryDelay)
		f.sync("n1")
		last = f.writes()
		if got := attempts(last); got != 1 {
			t.Fatalf("at +%s: %d eviction attempts, want 1 (%v)", clk.Since(fixtureNow), got, last)
		}
	}
	// At the drain timeout (+2s), after the pass's last attempt: given back.
	wantWrites(t, last, "create pods/eviction web-1", "patch nodes n1", "update configmaps "+contract.SlotsConfigMapName)
	if u, has := unschedulable(last[1].body); !has || u {
		t.Errorf("not uncordoned: %v", last[1])
	}
	if nb := annotations(last[1].body)[contract.AnnotationNotBefore]; nb != contract.FormatTime(clk.Now().Add(cfg.Decide.DrainFailureBackoff)) {
		t.Errorf("not-before %v, want now + --drain-failure-backoff", nb)
	}
	if f.api.deletes.Load() != 0 {
		t.Errorf("pod DELETE after refused evictions")
	}
	if v := testutil.ToFloat64(f.m.Reboots.WithLabelValues(ResultDrainFailed)); v != 1 {
		t.Errorf("reboots_total{drain_failed} = %v", v)
	}
	evs := f.eventReasons()
	for _, r := range []string{"Warning " + contract.ReasonEvictionBlocked, "Warning " + contract.ReasonDrainFailed, "Normal " + contract.ReasonUncordoned} {
		if !slices.Contains(evs, r) {
			t.Errorf("no %s event in %q", r, evs)
		}
	}
}

// --drain-delay: nothing is evicted before the delay after the cordon
// (state-since); the node is looked at again exactly then, and drained.
func TestDrainDelay(t *testing.T) {
	n := inState(requiring("n1"), contract.StateDraining, fixtureNow)
	cfg := testConfig(1)
	cfg.Decide.DrainDelay = 2 * time.Second
	clk := clocktesting.NewFakeClock(fixtureNow)
	f := newFixture(t, cfg, clk, n, testPod("web-1", "n1"), slotRecord(1, fixtureNow, "n1"))
	for _, at := range []time.Duration{0, time.Second, 2*time.Second - time.Millisecond} {
		clk.SetTime(fixtureNow.Add(at))
		if a := f.decision("n1"); a.Kind != decide.Wait || !a.Until.Equal(fixtureNow.Add(cfg.Decide.DrainDelay)) {
			t.Fatalf("at +%s: %v, want a wait until the delay is over", at, a)
		}
		f.sync("n1")
		if ws := f.writes(); len(ws) != 0 {
			t.Fatalf("at +%s: writes %v during the drain delay", at, ws)
		}
	}
	clk.SetTime(fixtureNow.Add(cfg.Decide.DrainDelay))
	ws := f.syncUntil("n1", func(w write) bool { return w.is("create", "pods", "eviction") })
	wantWrites(t, ws, "create pods/eviction web-1")
}

// TestNoReleaseDecidedAcrossATake: a reconciler that saw the node before a
// take (a slot held, nothing on the node that keeps it, no take remembered:
// the gap after a refused take) gives the slot back only if, once no take
// of the node is under way, no take has been made since: a release decided
// on the old view must never remove the new take's slot (the fault suite
// once found a node taken without a slot, its annotations reset as foreign
// and the node left cordoned).
func TestNoReleaseDecidedAcrossATake(t *testing.T) {
	f := newFixture(t, testConfig(1), clocktesting.NewFakeClock(fixtureNow), requiring("n1"), slotRecord(1, fixtureNow, "n1"))
	seen := f.get("n1")     // the reconciler's view: no state, the slot held
	f.c.takes.LockKey("n1") // a take is under way
	type result struct {
		released bool
		err      error
	}
	done := make(chan result)
	go func() {
		released, err := f.c.releaseIfOut(f.ctx, seen)
		done <- result{released, err}
	}()
	f.c.own.beginTake(seen) // the take, decided on that same version, lands
	select {
	case r := <-done:
		t.Fatalf("the release was decided while a take was under way (released %t, err %v)", r.released, r.err)
	default: // waiting for the take, as it must
	}
	if err := f.c.takes.UnlockKey("n1"); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.released {
		t.Fatalf("release decided across a take: released %t, err %v", r.released, r.err)
	}
	if _, held := f.slotData()["n1"]; !held {
		t.Fatal("the take's slot was removed from the record")
	}
	// A version later than the take's that shows the node out of the
	// pipeline does give the slot back.
	f.update("n1", func(n *v1.Node) { n.Labels = map[string]string{"later": "version"} })
	if released, err := f.c.releaseIfOut(f.ctx, f.get("n1")); err != nil || !released {
		t.Fatalf("a later version out of the pipeline: released %t, err %v", released, err)
	}
	if _, held := f.slotData()["n1"]; held {
		t.Fatal("slot still held")
	}
}
