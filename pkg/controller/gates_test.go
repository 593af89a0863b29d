package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/gates"
	"github.com/nodereboot/nodereboot/pkg/gates/window"
)

// waitEventWith waits for an event containing all the substrings.
func waitEventWith(t *testing.T, rec *record.FakeRecorder, subs ...string) string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	var seen []string
	for {
		select {
		case e := <-rec.Events:
			seen = append(seen, e)
			ok := true
			for _, s := range subs {
				ok = ok && strings.Contains(e, s)
			}
			if ok {
				return e
			}
		case <-deadline:
			t.Fatalf("no event with %q; got:\n%s", subs, strings.Join(seen, "\n"))
		}
	}
}

// inPipeline puts a test node in a state, cordoned by us, as if taken
// before.
func inPipeline(n *v1.Node, s contract.State) *v1.Node {
	n.Annotations[contract.AnnotationState] = string(s)
	n.Annotations[contract.AnnotationStateSince] = contract.FormatTime(time.Now())
	n.Annotations[contract.AnnotationCordonedByUs] = "true"
	n.Spec.Unschedulable = true
	return n
}

// takeTimes records when each node was first seen taken (state set).
func takeTimes(ctx context.Context, t *testing.T, f *fakeAPI) func(string) time.Time {
	w, err := f.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	taken := map[string]time.Time{}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			if n, ok := ev.Object.(*v1.Node); ok && decide.Out(n) {
				mu.Lock()
				if _, seen := taken[n.Name]; !seen {
					taken[n.Name] = time.Now()
				}
				mu.Unlock()
			}
		}
	}()
	return func(name string) time.Time {
		mu.Lock()
		defer mu.Unlock()
		return taken[name]
	}
}

// Outside the window nothing is taken and one RebootBlocked says until
// when; the admission pass is requeued for the moment the window opens,
// and the node is taken then (not before, and without polling: the only
// wake-up is that requeue).
func TestWindowOpensAtItsStart(t *testing.T) {
	// The controller's clock is a fake one: the window opens when the
	// test steps it there, and the take is stamped with that time.
	now := time.Now().Truncate(time.Second)
	clk := clocktesting.NewFakeClock(now)
	open := now.Add(time.Hour)
	w, err := window.Parse(nil, open.UTC().Format("15:04:05"), open.Add(time.Hour).UTC().Format("15:04:05"), "UTC")
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeAPI(t, testNode("n1", true))
	cfg := testConfig(1)
	cfg.Decide.Window = w
	_, m, rec, ctx := startControllerWithClock(t, f, cfg, clk)
	e := waitEventWith(t, rec, "Warning "+contract.ReasonRebootBlocked, "outside the reboot window", contract.FormatTime(open))
	if v := testutil.ToFloat64(m.Blocked.WithLabelValues(decide.BlockedWindow)); v != 1 {
		t.Errorf("reboot_blocked{%s} = %v while blocked (%s)", decide.BlockedWindow, v, e)
	}
	// The admission pass requeued itself for the opening: step the clock
	// to a second before it, then to it. The take is stamped with the
	// controller's time: a take before the opening would say so.
	clk.Step(open.Sub(now) - time.Second)
	clk.Step(time.Second)
	waitAll(ctx, t, f, []string{"n1"}, decide.Out, "n1 taken when the window opens")
	n1, _ := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if got := n1.Annotations[contract.AnnotationStateSince]; got != contract.FormatTime(open) {
		t.Errorf("taken at %s, window opens at %s", got, contract.FormatTime(open))
	}
	if v := testutil.ToFloat64(m.Blocked.WithLabelValues(decide.BlockedWindow)); v != 0 {
		t.Errorf("reboot_blocked{%s} = %v after the window opened", decide.BlockedWindow, v)
	}
}

// A window that closes while a node is in the pipeline: the node finishes,
// no new node is taken.
func TestClosedWindowLetsTheNodeInProgressFinish(t *testing.T) {
	w, err := window.Parse(nil, time.Now().Add(2*time.Hour).UTC().Format("15:04"), time.Now().Add(3*time.Hour).UTC().Format("15:04"), "UTC")
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeAPI(t, inPipeline(testNode("n1", true), contract.StateDraining), testNode("n2", true), testPod("web-1", "n1"))
	cfg := testConfig(1)
	cfg.Decide.Window = w
	reboots := map[string]int{}
	var mu sync.Mutex
	_, _, rec, ctx := startController(t, f, cfg)
	simulateReboots(ctx, t, f, reboots, &mu)
	waitAll(ctx, t, f, []string{"n1"}, done, "n1 finishes outside the window")
	waitEventWith(t, rec, "Warning "+contract.ReasonRebootBlocked, "outside the reboot window")
	if n2, _ := f.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{}); decide.Out(n2) {
		t.Errorf("n2 taken outside the window")
	}
}

// Paused: no node is taken (one RebootBlocked with the reason), the node in
// progress finishes; resumed: the next node is taken at once.
func TestPauseStopsTakingNotFinishing(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: contract.ConfigMapName,
		Annotations: map[string]string{contract.AnnotationPaused: "true", contract.AnnotationPausedReason: "change freeze"}}}
	f := newFakeAPI(t, inPipeline(testNode("n1", true), contract.StateDraining), testNode("n2", true), cm)
	cfg := testConfig(1)
	cfg.PauseNamespace = "ns"
	reboots := map[string]int{}
	var mu sync.Mutex
	_, m, rec, ctx := startController(t, f, cfg)
	simulateReboots(ctx, t, f, reboots, &mu)
	waitAll(ctx, t, f, []string{"n1"}, done, "n1 finishes while paused")
	waitEventWith(t, rec, "Warning "+contract.ReasonRebootBlocked, "paused", "change freeze")
	if v := testutil.ToFloat64(m.Blocked.WithLabelValues(decide.BlockedPaused)); v != 1 {
		t.Errorf("reboot_blocked{Paused} = %v", v)
	}
	if n2, _ := f.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{}); decide.Out(n2) {
		t.Fatalf("n2 taken while paused")
	}
	cm.Annotations[contract.AnnotationPaused] = "false"
	if _, err := f.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAll(ctx, t, f, []string{"n2"}, done, "n2 rebooted after the resume")
}

// A blocking pod holds back its node only: the next node in the queue goes
// first; once the pod is gone the node is taken at the next look
// (--blocked-recheck-interval).
func TestBlockingPodHoldsItsNodeOnly(t *testing.T) {
	n1 := testNode("n1", true) // the older request
	n2 := testNode("n2", true)
	n2.Status.Conditions[1].LastTransitionTime = metav1.NewTime(time.Now().Add(-time.Minute))
	backup := testPod("backup", "n1")
	backup.Labels = map[string]string{"app": "backup"}
	f := newFakeAPI(t, n1, n2, backup)
	cfg := testConfig(1)
	cfg.BlockingPods, _ = gates.NewPodBlocker([]string{"app=backup"})
	cfg.RecheckInterval = 300 * time.Millisecond
	reboots := map[string]int{}
	var mu sync.Mutex
	_, m, rec, ctx := startController(t, f, cfg)
	taken := takeTimes(ctx, t, f)
	simulateReboots(ctx, t, f, reboots, &mu)
	e := waitEventWith(t, rec, "Warning "+contract.ReasonRebootBlocked, "blocking pods", "default/backup")
	if v := testutil.ToFloat64(m.Blocked.WithLabelValues(decide.BlockedPods)); v != 1 {
		t.Errorf("reboot_blocked{BlockingPod} = %v (%s)", v, e)
	}
	waitAll(ctx, t, f, []string{"n2"}, done, "n2 rebooted while n1 is blocked")
	if n, _ := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); decide.Out(n) {
		t.Fatal("n1 taken with a blocking pod")
	}
	if err := f.CoreV1().Pods("default").Delete(ctx, "backup", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAll(ctx, t, f, []string{"n1"}, done, "n1 rebooted once its blocking pod is gone")
	if !taken("n2").Before(taken("n1")) {
		t.Errorf("n1 taken at %s, before n2 at %s", taken("n1"), taken("n2"))
	}
}

// A blocking pod that appears on a node after its take (a DaemonSet pod,
// which the drain leaves alone) keeps the drained node from being
// authorized until it goes.
func TestBlockingPodHoldsTheAuthorization(t *testing.T) {
	f := newFakeAPI(t, testNode("n1", true))
	cfg := testConfig(1)
	cfg.BlockingPods, _ = gates.NewPodBlocker([]string{"app=backup"})
	// The pod is created when the node is taken; the drain starts later.
	cfg.Decide.DrainDelay = 2 * time.Second
	reboots := map[string]int{}
	var mu sync.Mutex
	// Create the DaemonSet pod as soon as the node is taken.
	w, err := f.CoreV1().Nodes().Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var created atomic.Bool
	go func() {
		for ev := range w.ResultChan() {
			if n, ok := ev.Object.(*v1.Node); ok && decide.Out(n) && created.CompareAndSwap(false, true) {
				p := testPod("agent", "n1")
				p.Labels = map[string]string{"app": "backup"}
				p.OwnerReferences[0].Kind, p.OwnerReferences[0].Name = "DaemonSet", "agent"
				if _, err := f.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	_, m, rec, ctx := startController(t, f, cfg)
	simulateReboots(ctx, t, f, reboots, &mu)
	waitEventWith(t, rec, "Warning "+contract.ReasonRebootBlocked, "drained, but blocking pods", "default/agent")
	n, _ := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if s, _ := decide.StateOf(n); s != string(contract.StateDraining) {
		t.Fatalf("state %q with a blocking pod, want Draining", s)
	}
	if v := testutil.ToFloat64(m.Blocked.WithLabelValues(decide.BlockedPods)); v != 1 {
		t.Errorf("reboot_blocked{BlockingPod} = %v", v)
	}
	if err := f.CoreV1().Pods("default").Delete(ctx, "agent", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAll(ctx, t, f, []string{"n1"}, done, "n1 rebooted once the pod is gone")
}

// Labels and scale-down protection: pre-reboot labels from the take until
// the node leaves the pipeline (then restored), post-reboot labels after
// the reboot (off the node while in the pipeline); the autoscaler's
// annotation from the take until --scale-down-protection-after after the
// uncordon, only where we added it.
func TestLabelsAndScaleDownProtection(t *testing.T) {
	n1 := testNode("n1", true)
	n1.Labels["maintenance"] = "none"
	n1.Labels["rebooted"] = "yes" // from an earlier reboot
	n2 := testNode("n2", true)
	n2.Annotations[contract.AnnotationScaleDownDisabled] = "true" // an administrator's
	n2.Status.Conditions[1].LastTransitionTime = metav1.NewTime(time.Now().Add(-time.Minute))
	f := newFakeAPI(t, n1, n2)
	cfg := testConfig(1)
	cfg.Decide.PreRebootLabels = map[string]string{"maintenance": "reboot", "draining": "true"}
	cfg.Decide.PostRebootLabels = map[string]string{"rebooted": "yes"}
	cfg.Decide.ScaleDownProtection = true
	cfg.Decide.ScaleDownProtectionAfter = 500 * time.Millisecond
	reboots := map[string]int{}
	var mu sync.Mutex
	_, _, _, ctx := startController(t, f, cfg)

	// While out: pre labels on, post label off, protected, the old values
	// recorded.
	var during *v1.Node
	waitAll(ctx, t, f, []string{"n1"}, func(n *v1.Node) bool {
		if decide.Out(n) {
			during = n
		}
		return decide.Out(n)
	}, "n1 taken")
	if l := during.Labels; l["maintenance"] != "reboot" || l["draining"] != "true" || l["rebooted"] != "" {
		t.Errorf("labels while out: %v", l)
	}
	var before map[string]*string
	if err := json.Unmarshal([]byte(during.Annotations[contract.AnnotationLabelsBefore]), &before); err != nil ||
		len(before) != 3 || *before["maintenance"] != "none" || before["draining"] != nil || *before["rebooted"] != "yes" {
		t.Errorf("%s = %q (%v)", contract.AnnotationLabelsBefore, during.Annotations[contract.AnnotationLabelsBefore], err)
	}
	if during.Annotations[contract.AnnotationScaleDownDisabled] != "true" || during.Annotations[contract.AnnotationScaleDownDisabledByUs] != "true" {
		t.Errorf("not protected while out: %v", during.Annotations)
	}
	simulateReboots(ctx, t, f, reboots, &mu)

	// Done: restored, post label on, protection lasts a while then goes.
	waitAll(ctx, t, f, []string{"n1", "n2"}, done, "both rebooted")
	got, _ := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if l := got.Labels; l["maintenance"] != "none" || l["rebooted"] != "yes" {
		t.Errorf("labels after: %v", l)
	}
	if _, ok := got.Labels["draining"]; ok {
		t.Errorf("pre-reboot label draining left: %v", got.Labels)
	}
	if _, ok := got.Annotations[contract.AnnotationLabelsBefore]; ok {
		t.Errorf("%s left", contract.AnnotationLabelsBefore)
	}
	waitAll(ctx, t, f, []string{"n1"}, func(n *v1.Node) bool {
		_, a := n.Annotations[contract.AnnotationScaleDownDisabled]
		_, b := n.Annotations[contract.AnnotationScaleDownDisabledByUs]
		return !a && !b
	}, "n1's scale-down protection removed after --scale-down-protection-after")
	got2, _ := f.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
	if got2.Annotations[contract.AnnotationScaleDownDisabled] != "true" {
		t.Errorf("the administrator's %s on n2 was removed", contract.AnnotationScaleDownDisabled)
	}
	if _, ok := got2.Annotations[contract.AnnotationScaleDownDisabledByUs]; ok {
		t.Errorf("n2 was protected by an administrator, not by us: %v", got2.Annotations)
	}
}

// promSwitch is a Prometheus stub whose ALERTS answer the test switches.
type promSwitch struct {
	mu      sync.Mutex
	answers []string // alert names per query; the last one repeats
	queries int
}

func (p *promSwitch) set(answers ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers, p.queries = answers, 0
}

func (p *promSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	a := p.answers[min(p.queries, len(p.answers)-1)]
	p.queries++
	p.mu.Unlock()
	var result []string
	for _, name := range strings.Fields(a) {
		result = append(result, fmt.Sprintf(`{"metric":{"__name__":"ALERTS","alertname":%q,"alertstate":"firing"},"value":[0,"1"]}`, name))
	}
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s]}}`, strings.Join(result, ","))
}

// Alerts block the take and, checked again, the authorization; an
// unreachable Prometheus blocks too (fail safe).
func TestAlertsBlockTakeAndAuthorization(t *testing.T) {
	prom := &promSwitch{answers: []string{"KubeNodeDown"}}
	srv := httptest.NewServer(prom)
	defer srv.Close()
	f := newFakeAPI(t, testNode("n1", true))
	cfg := testConfig(1)
	cfg.Alerts = &gates.AlertChecker{URL: srv.URL, Timeout: time.Second}
	cfg.RecheckInterval = 300 * time.Millisecond
	reboots := map[string]int{}
	var mu sync.Mutex
	_, m, rec, ctx := startController(t, f, cfg)
	simulateReboots(ctx, t, f, reboots, &mu)
	waitEventWith(t, rec, "Warning "+contract.ReasonRebootBlocked, "active Prometheus alerts: KubeNodeDown")
	if v := testutil.ToFloat64(m.Blocked.WithLabelValues(decide.BlockedAlerts)); v != 1 {
		t.Errorf("reboot_blocked{ActiveAlerts} = %v", v)
	}
	// Clear at the take, firing again right before the authorization.
	prom.set("", "KubeNodeDown", "")
	waitEventWith(t, rec, "Warning "+contract.ReasonRebootBlocked, "drained, but active Prometheus alerts: KubeNodeDown")
	waitAll(ctx, t, f, []string{"n1"}, done, "n1 rebooted once the alert is gone")

	// Prometheus goes away: blocked, and the reason says so.
	srv.Close()
	n, _ := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	n = n.DeepCopy()
	n.Annotations[contract.AnnotationRebootRequested] = "yes"
	delete(n.Annotations, contract.AnnotationLastReboot)
	if _, err := f.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEventWith(t, rec, "Warning "+contract.ReasonRebootBlocked, "cannot ask Prometheus")
	if v := testutil.ToFloat64(m.Blocked.WithLabelValues(decide.BlockedPrometheus)); v != 1 {
		t.Errorf("reboot_blocked{PrometheusUnavailable} = %v", v)
	}
	if n, _ := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); decide.Out(n) {
		t.Errorf("taken while Prometheus is unreachable")
	}
}

// --cordoned-by-others=wait: while a selected node is cordoned by somebody
// else (an AKS upgrade draining it), no node is taken; its uncordon lets
// the rollout go on.
func TestWaitsWhileANodeIsCordonedByOthers(t *testing.T) {
	other := testNode("n2", false)
	other.Spec.Unschedulable = true
	f := newFakeAPI(t, testNode("n1", true), other, testPod("web-1", "n1"))
	cfg := testConfig(1)
	cfg.Decide.WaitForOthersCordons = true
	_, m, rec, ctx := startController(t, f, cfg)
	waitEventWith(t, rec, "Warning "+contract.ReasonRebootBlocked, "cordoned by somebody else (--cordoned-by-others=wait): n2")
	if v := testutil.ToFloat64(m.Blocked.WithLabelValues(decide.BlockedCordoned)); v != 1 {
		t.Errorf("reboot_blocked{NodeCordoned} = %v, want 1", v)
	}
	if n1, _ := f.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); decide.Out(n1) {
		t.Fatal("n1 taken while n2 is cordoned by somebody else")
	}
	patch := []byte(`{"spec":{"unschedulable":false}}`)
	if _, err := f.CoreV1().Nodes().Patch(ctx, "n2", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAll(ctx, t, f, []string{"n1"}, decide.Out, "n1 taken once n2 is uncordoned")
}
