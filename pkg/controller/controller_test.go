package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/clock"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/drain"
)

var (
	nodesGVR = v1.SchemeGroupVersion.WithResource("nodes")
	podsGVR  = v1.SchemeGroupVersion.WithResource("pods")
	// configMapsGVR: the slot record's.
	configMapsGVR = v1.SchemeGroupVersion.WithResource("configmaps")
)

// fakeAPI makes the fake clientset behave like an API server where the
// controller depends on it: node writes bump resourceVersion, a patch with
// metadata.resourceVersion is refused with a conflict when stale, and an
// eviction deletes the pod.
type fakeAPI struct {
	*fake.Clientset
	rv        atomic.Int64
	mu        sync.Mutex
	evictions map[string]int
	deletes   atomic.Int64
	conflicts atomic.Int64
}

func newFakeAPI(t *testing.T, objs ...runtime.Object) *fakeAPI {
	f := &fakeAPI{Clientset: fake.NewClientset(objs...), evictions: map[string]int{}}
	f.rv.Store(100)
	f.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		f.mu.Lock()
		defer f.mu.Unlock()
		obj, err := f.Tracker().Get(nodesGVR, "", pa.GetName())
		if err != nil {
			return true, nil, err
		}
		cur := obj.(*v1.Node)
		var pre struct {
			Metadata struct {
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(pa.GetPatch(), &pre); err != nil {
			return true, nil, err
		}
		if pre.Metadata.ResourceVersion != "" && pre.Metadata.ResourceVersion != cur.ResourceVersion {
			f.conflicts.Add(1)
			return true, nil, apierrors.NewConflict(nodesGVR.GroupResource(), cur.Name, fmt.Errorf("stale resourceVersion"))
		}
		curJSON, _ := json.Marshal(cur)
		merged, err := strategicpatch.StrategicMergePatch(curJSON, pa.GetPatch(), &v1.Node{})
		if err != nil {
			return true, nil, err
		}
		n := &v1.Node{}
		if err := json.Unmarshal(merged, n); err != nil {
			return true, nil, err
		}
		n.ResourceVersion = strconv.FormatInt(f.rv.Add(1), 10)
		return true, n, f.Tracker().Update(nodesGVR, n, "")
	})
	f.PrependReactor("update", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := a.(k8stesting.UpdateAction).GetObject().(*v1.Node).DeepCopy()
		n.ResourceVersion = strconv.FormatInt(f.rv.Add(1), 10)

		return true, n, f.Tracker().Update(nodesGVR, n, "")
	})
	// ConfigMaps (the slot record): versions and compare-and-swap too.
	f.PrependReactor("create", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		cm := a.(k8stesting.CreateAction).GetObject().(*v1.ConfigMap).DeepCopy()
		cm.ResourceVersion = strconv.FormatInt(f.rv.Add(1), 10)
		return true, cm, f.Tracker().Create(configMapsGVR, cm, cm.Namespace)
	})
	f.PrependReactor("update", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		cm := a.(k8stesting.UpdateAction).GetObject().(*v1.ConfigMap).DeepCopy()
		cur, err := f.Tracker().Get(configMapsGVR, cm.Namespace, cm.Name)
		if err != nil {
			return true, nil, err
		}
		if rv := cur.(*v1.ConfigMap).ResourceVersion; cm.ResourceVersion != rv {
			f.conflicts.Add(1)
			return true, nil, apierrors.NewConflict(configMapsGVR.GroupResource(), cm.Name, fmt.Errorf("resourceVersion %q, the object has %q", cm.ResourceVersion, rv))
		}
		cm.ResourceVersion = strconv.FormatInt(f.rv.Add(1), 10)
		return true, cm, f.Tracker().Update(configMapsGVR, cm, cm.Namespace)
	})
	f.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca := a.(k8stesting.CreateAction)
		if ca.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		name := ca.GetObject().(interface{ GetName() string }).GetName()
		f.mu.Lock()
		f.evictions[name]++
		f.mu.Unlock()
		// Like the API server: an accepted eviction marks the pod
		// terminating; the kubelet (below) removes it.
		obj, err := f.Tracker().Get(podsGVR, ca.GetNamespace(), name)
		if err != nil {
			return true, nil, err
		}
		p := obj.(*v1.Pod).DeepCopy()
		now := metav1.Now()
		p.DeletionTimestamp = &now
		return true, nil, f.Tracker().Update(podsGVR, p, p.Namespace)
	})
	// The kubelet: a terminating pod is gone after a short grace period.
	// (The fake's watches do not replay deletions that happen between an
	// informer's list and its watch, which a real API server does; the
	// grace period keeps the pod watches of the drain out of that gap.)
	w, err := f.Tracker().Watch(podsGVR, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*v1.Pod); ok && p.DeletionTimestamp != nil {
				time.AfterFunc(20*time.Millisecond, func() { _ = f.Tracker().Delete(podsGVR, p.Namespace, p.Name) })
			}
		}
	}()
	f.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.deletes.Add(1)
		return false, nil, nil
	})
	return f
}

func testNode(name string, required bool) *v1.Node {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1", Labels: map[string]string{}, Annotations: map[string]string{}},
		Status: v1.NodeStatus{
			NodeInfo:   v1.NodeSystemInfo{BootID: name + "-boot-0"},
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
	if required {
		n.Status.Conditions = append(n.Status.Conditions, v1.NodeCondition{Type: contract.DefaultConditionType,
			Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Hour))})
	}
	return n
}

func testPod(name, node string) *v1.Pod {
	t := true
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: ktypes.UID("uid-" + name),
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", APIVersion: "apps/v1", Name: "rs", Controller: &t}}},
		Spec:   v1.PodSpec{NodeName: node},
		Status: v1.PodStatus{Phase: v1.PodRunning},
	}
}

func testConfig(maxc int) Config {
	return Config{
		Decide: decide.Config{
			Conditions: []string{contract.DefaultConditionType}, MaxConcurrent: maxc,
			DrainTimeout: time.Minute, OnDrainFailure: decide.DrainFailureUncordon, DrainFailureBackoff: time.Hour,
			RebootTimeout: time.Minute, MinRebootInterval: time.Hour,
		},
		Drain: drain.Options{GracePeriodSeconds: -1, DeleteEmptyDirData: true, RetryDelay: 100 * time.Millisecond},
	}
}

// simulateReboots plays the detector and the kubelet: an authorized node
// "reboots" (new boot ID, condition False) at once.
func simulateReboots(ctx context.Context, t *testing.T, f *fakeAPI, reboots map[string]int, mu *sync.Mutex) {
	var clear atomic.Bool
	clear.Store(true)
	simulateRebootsWith(ctx, t, f, reboots, mu, &clear)
}

// simulateRebootsWith is simulateReboots; while clearCondition is false a
// reboot leaves the condition as it was written before it (its writer has
// not reported since the boot).
func simulateRebootsWith(ctx context.Context, t *testing.T, f *fakeAPI, reboots map[string]int, mu *sync.Mutex, clearCondition *atomic.Bool) {
	w, err := f.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Error(err)
		return
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			n, ok := ev.Object.(*v1.Node)
			if !ok || n.Annotations[contract.AnnotationRebootAuthorized] != n.Status.NodeInfo.BootID {
				continue
			}
			mu.Lock()
			reboots[n.Name]++
			count := reboots[n.Name]
			mu.Unlock()
			n = n.DeepCopy()
			n.Status.NodeInfo.BootID = fmt.Sprintf("%s-boot-%d", n.Name, count)
			for i := range n.Status.Conditions {
				if n.Status.Conditions[i].Type == contract.DefaultConditionType && clearCondition.Load() {
					n.Status.Conditions[i].Status = v1.ConditionFalse
				}
			}
			if _, err := f.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
				t.Errorf("simulated reboot of %s: %v", n.Name, err)
			}
		}
	}()
}

func waitAll(ctx context.Context, t *testing.T, f *fakeAPI, names []string, cond func(*v1.Node) bool, what string) {
	t.Helper()
	w, err := f.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	check := func() bool {
		for _, name := range names {
			n, err := f.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || !cond(n) {
				return false
			}
		}
		return true
	}
	deadline := time.After(30 * time.Second)
	for !check() {
		select {
		case <-w.ResultChan():
		case <-deadline:
			for _, name := range names {
				n, _ := f.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				t.Logf("%s: unschedulable=%t annotations=%v", name, n.Spec.Unschedulable, n.Annotations)
			}
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func done(n *v1.Node) bool {
	return !decide.Out(n) && n.Annotations[contract.AnnotationLastReboot] != "" && !n.Spec.Unschedulable
}

func startController(t *testing.T, f *fakeAPI, cfg Config) (*Controller, *Metrics, *record.FakeRecorder, context.Context) {
	return startControllerWithClock(t, f, cfg, clock.RealClock{})
}

// startControllerWithClock is startController on the given clock (a fake
// one steps the controller's time, its timeouts and requeues).
func startControllerWithClock(t *testing.T, f *fakeAPI, cfg Config, clk clock.WithTicker) (*Controller, *Metrics, *record.FakeRecorder, context.Context) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	rec := record.NewFakeRecorder(1000)
	m := NewMetrics(prometheus.NewRegistry())
	c := New(f, rec, clk, cfg, m)
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, 3) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			// A worker blocked, e.g. on a full FakeRecorder after a
			// runaway loop of events.
			t.Errorf("Run did not return 30s after its context ended")
		}
	})
	return c, m, rec, ctx
}

func eventsOf(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// After a reboot, the condition still holds what was written before it
// until its writer reports again: with --min-reboot-interval 0 the node is
// not taken again on that stale condition, and no RebootRequiredAgain is
// recorded; once the condition is written again, it counts.
func TestStaleConditionAfterRebootIsIgnored(t *testing.T) {
	f := newFakeAPI(t, testNode("n1", true), testNode("n2", false))
	cfg := testConfig(1)
	cfg.Decide.MinRebootInterval = 0
	reboots := map[string]int{}
	var mu sync.Mutex
	_, _, rec, ctx := startController(t, f, cfg)
	var clear atomic.Bool // reboots leave the condition alone
	simulateRebootsWith(ctx, t, f, reboots, &mu, &clear)
	waitAll(ctx, t, f, []string{"n1"}, done, "n1 rebooted")

	// n2 asks now. Its request is younger than n1's (stale) condition,
	// so the admission pass that takes n2 would have taken n1 first, had
	// it counted n1's condition.
	setCondition := func(name string, hb time.Time) {
		t.Helper()
		n, err := f.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n = n.DeepCopy()
		found := false
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == contract.DefaultConditionType {
				n.Status.Conditions[i].Status = v1.ConditionTrue
				n.Status.Conditions[i].LastHeartbeatTime = metav1.NewTime(hb)
				found = true
			}
		}
		if !found {
			n.Status.Conditions = append(n.Status.Conditions, v1.NodeCondition{Type: contract.DefaultConditionType,
				Status: v1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(hb), LastTransitionTime: metav1.NewTime(hb)})
		}
		if _, err := f.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setCondition("n2", time.Now())
	waitAll(ctx, t, f, []string{"n2"}, done, "n2 rebooted")
	mu.Lock()
	if reboots["n1"] != 1 || reboots["n2"] != 1 {
		t.Errorf("reboots %v, want n1 and n2 once each", reboots)
	}
	mu.Unlock()
	for _, e := range eventsOf(rec) {
		if strings.Contains(e, contract.ReasonRebootTooSoon) {
			t.Errorf("warning on a stale condition: %s", e)
		}
	}

	// n1's writer reports True again after the reboot (a second later
	// than last-reboot at the API's second precision): it counts. The
	// next reboot clears it.
	clear.Store(true)
	n1, _ := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	last, err := contract.ParseTime(n1.Annotations[contract.AnnotationLastReboot])
	if err != nil {
		t.Fatal(err)
	}
	setCondition("n1", last.Add(time.Second))
	waitAll(ctx, t, f, []string{"n1"}, func(n *v1.Node) bool {
		mu.Lock()
		defer mu.Unlock()
		return reboots["n1"] == 2 && done(n)
	}, "n1 rebooted again on a fresh condition")
}

// The timestamps of a condition cannot tell a write in the same second as
// the reboot from one before it; the boot the detector's condition names
// can: a condition that went False after the reboot and True again (with
// the very same timestamps as before the reboot) counts, because it names
// the new boot.
func TestConditionNamingTheNewBootCounts(t *testing.T) {
	n := testNode("n1", true)
	hb := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	n.Status.Conditions[1].LastHeartbeatTime, n.Status.Conditions[1].LastTransitionTime = hb, hb
	f := newFakeAPI(t, n)
	cfg := testConfig(1)
	cfg.Decide.MinRebootInterval = 0
	reboots := map[string]int{}
	var mu sync.Mutex
	_, _, _, ctx := startController(t, f, cfg)
	var clear atomic.Bool // the first reboot leaves the condition alone
	simulateRebootsWith(ctx, t, f, reboots, &mu, &clear)
	waitAll(ctx, t, f, []string{"n1"}, done, "n1 rebooted")
	clear.Store(true)
	for _, st := range []v1.ConditionStatus{v1.ConditionFalse, v1.ConditionTrue} {
		cur, err := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur = cur.DeepCopy()
		cur.Status.Conditions[1].Status = st
		// As the detector writes it: naming the boot it was observed in
		// (the timestamps stay an hour old: they do not decide).
		cur.Status.Conditions[1].Message = contract.ConditionMessage("present", cur.Status.NodeInfo.BootID)
		if _, err := f.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitAll(ctx, t, f, []string{"n1"}, func(n *v1.Node) bool {
		mu.Lock()
		defer mu.Unlock()
		return reboots["n1"] == 2 && done(n)
	}, "n1 rebooted again on a condition written after its reboot")
}

// A node whose cached version is older than the controller's own last write
// to it is not decided on (the decision would be refused with a conflict);
// once the cache shows the write, it is, and the write is forgotten.
func TestBehindOwnWrite(t *testing.T) {
	c := New(fake.NewClientset(), record.NewFakeRecorder(10), clock.RealClock{}, testConfig(1), NewMetrics(prometheus.NewRegistry()))
	n := testNode("n1", false)
	if c.own.behind(n) {
		t.Fatal("behind without a write")
	}
	for _, tc := range []struct {
		rv     string
		behind bool
	}{{"9", true}, {"9", true}, {"opaque", false}, {"11", false}} {
		c.wrote("n1", &v1.Node{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "10"}})
		n.ResourceVersion = tc.rv
		if got := c.own.behind(n); got != tc.behind {
			t.Errorf("rv %s: behind %t, want %t", tc.rv, got, tc.behind)
		}
		// Remembered while behind, forgotten once not: then even an
		// older version is decided on.
		n.ResourceVersion = "1"
		if kept := c.own.behind(n); kept != tc.behind {
			t.Errorf("rv %s: write remembered %t", tc.rv, kept)
		}
	}
}
