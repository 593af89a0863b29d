package detector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/kubeclient/fromclientset"
	"github.com/nodereboot/nodereboot/pkg/reboot"
	"github.com/nodereboot/nodereboot/pkg/sentinel"
)

const nodeName = "node-0"

// fakeSource emits what the test sends and reports probe requests.
type fakeSource struct {
	obs    chan sentinel.Observation
	probes chan struct{}
}

func newFakeSource() *fakeSource {
	return &fakeSource{obs: make(chan sentinel.Observation, 10), probes: make(chan struct{}, 10)}
}

func (f *fakeSource) Run(ctx context.Context, probeNow <-chan struct{}, emit func(sentinel.Observation)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case o := <-f.obs:
			emit(o)
		case <-probeNow:
			select {
			case f.probes <- struct{}{}:
			default:
			}
		}
	}
}

// fakeRebooter counts calls, fails the first failures ones and checks that
// calls never overlap.
type fakeRebooter struct {
	mu       sync.Mutex
	calls    int
	failures int
	inFlight int
	overlap  bool
	called   chan struct{}
}

func newFakeRebooter(failures int) *fakeRebooter {
	return &fakeRebooter{failures: failures, called: make(chan struct{}, 100)}
}

func (f *fakeRebooter) Reboot(context.Context) error {
	f.mu.Lock()
	f.calls++
	f.inFlight++
	if f.inFlight > 1 {
		f.overlap = true
	}
	n := f.calls
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
		f.called <- struct{}{}
	}()
	if n <= f.failures {
		return fmt.Errorf("Failed to reboot system via logind: attempt %d", n)
	}
	return nil
}

func (f *fakeRebooter) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type harness struct {
	t        *testing.T
	client   *fake.Clientset
	source   *fakeSource
	rebooter *fakeRebooter
	recorder *record.FakeRecorder
	clock    clock.WithTicker
	d        *Detector
	ctx      context.Context
	bootID   string

	// agentMu guards agentSaw, the last node the agent synced on, and
	// agentSync, closed (and replaced) at each of its syncs.
	agentMu   sync.Mutex
	agentSaw  *v1.Node
	agentSync chan struct{}
}

type harnessOpts struct {
	node      *v1.Node
	detection bool
	failures  int
	clock     clock.WithTicker
	// rebooter replaces the counting fake rebooter.
	rebooter reboot.Rebooter
	// reportOnly runs without a Rebooter (--reboot-method=none).
	reportOnly bool
	// setup runs on the client before the detector starts (reactors
	// cannot be added safely later).
	setup func(*fake.Clientset)
}

// authorized is what the controller writes, in one patch of a node it has
// cordoned, to authorize the reboot of boot.
func authorized(boot string) map[string]string {
	return map[string]string{
		contract.AnnotationRebootAuthorized: boot,
		contract.AnnotationState:            string(contract.StateAuthorized),
		contract.AnnotationStateReason:      contract.AuthorizedReason(boot),
	}
}

// authorization is authorized(boot) as an annotate argument.
func authorization(boot string) map[string]*string {
	out := map[string]*string{}
	for k, v := range authorized(boot) {
		out[k] = ptr.To(v)
	}
	return out
}

// newNode is the test node: cordoned, as every node the controller
// authorizes is.
func newNode(ann map[string]string, conds ...v1.NodeCondition) *v1.Node {
	return &v1.Node{
		Spec:       v1.NodeSpec{Unschedulable: true},
		ObjectMeta: metav1.ObjectMeta{Name: nodeName, UID: "uid-1", Annotations: ann},
		Status: v1.NodeStatus{
			NodeInfo: v1.NodeSystemInfo{BootID: bootA},
			Conditions: append([]v1.NodeCondition{{
				Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0),
			}}, conds...),
		},
	}
}

// start runs a detector on a fake clientset until the test ends.
func start(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	if o.node == nil {
		o.node = newNode(nil)
	}
	if o.clock == nil {
		o.clock = clock.RealClock{}
	}
	bootFile := filepath.Join(t.TempDir(), "boot_id")
	if err := os.WriteFile(bootFile, []byte(bootA+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t:        t,
		client:   fake.NewClientset(o.node),
		source:   newFakeSource(),
		rebooter: newFakeRebooter(o.failures),
		recorder: record.NewFakeRecorder(100),
		clock:    o.clock,
		bootID:   bootA,
	}
	if o.setup != nil {
		o.setup(h.client)
	}
	var rebooter reboot.Rebooter = h.rebooter
	if o.rebooter != nil {
		rebooter = o.rebooter
	}
	if o.reportOnly {
		rebooter = nil
	}
	d, err := New(Config{
		Client: fromclientset.New(h.client), NodeName: nodeName, ConditionType: contract.DefaultConditionType,
		Detection: o.detection, Source: h.source, HeartbeatPeriod: heartbeat,
		BootIDFile: bootFile, Rebooter: rebooter,
		RebootBackoff:  wait.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: 100, Cap: 40 * time.Millisecond},
		WriteBackoff:   wait.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: 100, Cap: 40 * time.Millisecond},
		MetricsAddress: "127.0.0.1:0", HealthAddress: "127.0.0.1:0",
		Clock: o.clock, Recorder: h.recorder,
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.BootID() != bootA {
		t.Fatalf("BootID() = %q, want the trimmed file content %q", d.BootID(), bootA)
	}
	h.d = d
	h.agentSync = make(chan struct{})
	d.agentSynced = func(n *v1.Node) {
		h.agentMu.Lock()
		defer h.agentMu.Unlock()
		h.agentSaw = n
		close(h.agentSync)
		h.agentSync = make(chan struct{})
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx = ctx
	if err := d.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

func (h *harness) node() *v1.Node {
	h.t.Helper()
	n, err := h.client.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// waitNode waits until the API's node satisfies cond (what the
// detector wrote, as the node's watch shows it).
func (h *harness) waitNode(what string, cond func(*v1.Node) bool) *v1.Node {
	h.t.Helper()
	w, err := h.client.CoreV1().Nodes().Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	defer w.Stop()
	deadline := time.After(10 * time.Second)
	for {
		last := h.node()
		if cond(last) {
			return last
		}
		select {
		case <-w.ResultChan():
		case <-deadline:
			h.t.Fatalf("waiting for %s: no such node within 10s; node: %+v %+v", what, last.Annotations, last.Status.Conditions)
		}
	}
}

// waitAgent waits until the agent has acted on a version of the node for
// which cond holds: the change was not only written to the API, the agent
// saw it and did what it does about it.
func (h *harness) waitAgent(what string, cond func(*v1.Node) bool) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.agentMu.Lock()
		saw, next := h.agentSaw, h.agentSync
		h.agentMu.Unlock()
		if saw != nil && cond(saw) {
			return
		}
		select {
		case <-next:
		case <-deadline:
			var ann map[string]string
			if saw != nil {
				ann = saw.Annotations
			}
			h.t.Fatalf("the agent did not act on %s within 10s; it last saw %v", what, ann)
		}
	}
}

// annotated is a waitAgent condition: the annotation has the value.
func annotated(k, v string) func(*v1.Node) bool {
	return func(n *v1.Node) bool { return n.Annotations[k] == v }
}

func (h *harness) waitCondition(status v1.ConditionStatus) v1.NodeCondition {
	h.t.Helper()
	n := h.waitNode("condition "+string(status), func(n *v1.Node) bool {
		c := contract.Condition(n, contract.DefaultConditionType)
		return c != nil && c.Status == status
	})
	return *contract.Condition(n, contract.DefaultConditionType)
}

// event waits for the next recorded event.
func (h *harness) event() string {
	h.t.Helper()
	select {
	case e := <-h.recorder.Events:
		return e
	case <-time.After(10 * time.Second):
		h.t.Fatal("no event within 10s")
		return ""
	}
}

func (h *harness) expectEvent(prefix string) string {
	h.t.Helper()
	e := h.event()
	if !strings.HasPrefix(e, prefix) {
		h.t.Fatalf("event %q, want one starting with %q", e, prefix)
	}
	return e
}

func (h *harness) noEvent() {
	h.t.Helper()
	select {
	case e := <-h.recorder.Events:
		h.t.Fatalf("unexpected event %q", e)
	default:
	}
}

func (h *harness) annotate(ann map[string]*string) {
	h.t.Helper()
	n := h.node()
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	for k, v := range ann {
		if v == nil {
			delete(n.Annotations, k)
		} else {
			n.Annotations[k] = *v
		}
	}
	if _, err := h.client.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// statusPatches counts the patches of nodes/status.
func (h *harness) statusPatches() int {
	n := 0
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "patch" && a.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func (h *harness) ready() (int, string) {
	h.t.Helper()
	resp, err := http.Get("http://" + h.d.HealthAddr() + "/readyz?verbose")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// waitMetric waits until a metric has a value: counters move right after the
// call that the test saw returns.
func waitMetric(t *testing.T, c prometheus.Metric, want float64) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return value(c) == want, nil
	}); err != nil {
		t.Fatalf("metric %v, want %v", value(c), want)
	}
}

func TestConditionTransitionsAndEvents(t *testing.T) {
	h := start(t, harnessOpts{detection: true})
	if code, body := h.ready(); code != http.StatusInternalServerError {
		t.Fatalf("/readyz before any observation: %d %s", code, body)
	}

	h.source.obs <- present
	c := h.waitCondition(v1.ConditionTrue)
	if c.Reason != sentinel.ReasonSentinelPresent || c.Message != contract.ConditionMessage(present.Message, bootA) {
		t.Fatalf("condition %+v", c)
	}
	h.expectEvent("Normal RebootRequired " + present.Message)
	if got := value(h.d.metrics.rebootRequired); got != 1 {
		t.Fatalf("reboot_required gauge %v, want 1", got)
	}
	if code, body := h.ready(); code != http.StatusOK {
		t.Fatalf("/readyz after the first write: %d %s", code, body)
	}
	// The kubelet's condition is untouched.
	if r := contract.Condition(h.node(), string(v1.NodeReady)); r == nil || r.Status != v1.ConditionTrue || r.Reason != "KubeletReady" {
		t.Fatalf("Ready condition changed: %+v", r)
	}

	// The same observation again: no write, no event.
	writes := h.statusPatches()
	h.source.obs <- present
	h.source.obs <- absent // a sync point: the next write is this one's
	c = h.waitCondition(v1.ConditionFalse)
	if got := h.statusPatches(); got != writes+1 {
		for _, a := range h.client.Actions() {
			if p, ok := a.(k8stesting.PatchAction); ok {
				t.Logf("%s %s %s", a.GetVerb(), a.GetSubresource(), p.GetPatch())
			}
		}
		t.Fatalf("%d status patches for an unchanged and a changed observation, want 1", got-writes)
	}
	h.expectEvent("Normal RebootNotRequired")

	h.source.obs <- folder
	c = h.waitCondition(v1.ConditionUnknown)
	h.expectEvent("Warning SentinelUnreadable Sentinel /var/run/reboot-required is a folder")
	if got := value(h.d.metrics.rebootRequired); got != -1 {
		t.Fatalf("reboot_required gauge %v, want -1", got)
	}
	if got := value(h.d.metrics.errors.WithLabelValues(ErrorSentinel)); got != 1 {
		t.Fatalf("sentinel errors %v, want 1", got)
	}
	h.source.obs <- cmdFailed
	h.waitNode("command failure reason", func(n *v1.Node) bool {
		return contract.Condition(n, contract.DefaultConditionType).Reason == sentinel.ReasonCommandFailed
	})
	h.expectEvent("Warning RebootRequiredUnknown")
	if h.rebooter.Calls() != 0 {
		t.Fatal("rebooted without an authorization")
	}
}

func TestHeartbeat(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	h := start(t, harnessOpts{detection: true, clock: clk})
	h.source.obs <- present
	first := h.waitCondition(v1.ConditionTrue)
	if !first.LastHeartbeatTime.Time.Equal(t0) || !first.LastTransitionTime.Time.Equal(t0) {
		t.Fatalf("first write %+v, want both times %v", first, t0)
	}
	h.expectEvent("Normal RebootRequired")

	// Just before the heartbeat is due: nothing is written.
	waitForTimer(t, clk)
	clk.Step(heartbeat - time.Second)
	h.source.obs <- present
	waitForTimer(t, clk)
	if got := contract.Condition(h.node(), contract.DefaultConditionType); !got.LastHeartbeatTime.Time.Equal(t0) {
		t.Fatalf("heartbeat written early: %v", got.LastHeartbeatTime)
	}
	clk.Step(time.Second)
	n := h.waitNode("heartbeat", func(n *v1.Node) bool {
		return contract.Condition(n, contract.DefaultConditionType).LastHeartbeatTime.Time.Equal(t0.Add(heartbeat))
	})
	if c := contract.Condition(n, contract.DefaultConditionType); !c.LastTransitionTime.Time.Equal(t0) {
		t.Fatalf("heartbeat moved the transition time: %v", c.LastTransitionTime)
	}
	h.noEvent()
}

// waitForTimer waits until the fake clock has a waiter (the loop armed its
// timer).
func waitForTimer(t *testing.T, clk *clocktesting.FakeClock) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return clk.HasWaiters(), nil
	}); err != nil {
		t.Fatal("the detector armed no timer")
	}
}

// A restarted detector (after a boot, or a crash) finds its condition
// unchanged and with a recent heartbeat of the previous process: it writes
// it once anyway, with a fresh heartbeat and the old transition time, and
// records no event. The controller tells a condition written after a reboot
// from a stale one by that heartbeat; without the write, a sentinel that is
// back right after the reboot would look like the condition from before it.
func TestRestartKeepsTransitionTime(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	old := cond(present, t0.Add(-48*time.Hour), t0.Add(-time.Minute))
	h := start(t, harnessOpts{detection: true, clock: clk, node: newNode(nil, *old)})
	h.source.obs <- present
	n := h.waitNode("a fresh heartbeat", func(n *v1.Node) bool {
		return contract.Condition(n, contract.DefaultConditionType).LastHeartbeatTime.Time.Equal(t0)
	})
	got := contract.Condition(n, contract.DefaultConditionType)
	if !got.LastTransitionTime.Time.Equal(old.LastTransitionTime.Time) || got.Status != v1.ConditionTrue {
		t.Fatalf("condition after the restart %+v, want the old transition time %v", got, old.LastTransitionTime)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		code, _ := h.ready()
		return code == http.StatusOK, nil
	}); err != nil {
		t.Fatal("not ready")
	}
	// Once: the same observation again writes nothing before the heartbeat.
	// A changed message after it is the sync point: it is written, and
	// nothing else was.
	h.source.obs <- present
	changed := present
	changed.Message += "; required by libc6"
	h.source.obs <- changed
	h.waitNode("the changed message", func(n *v1.Node) bool {
		return contract.Condition(n, contract.DefaultConditionType).Message == contract.ConditionMessage(changed.Message, bootA)
	})
	if n := h.statusPatches(); n != 2 {
		t.Fatalf("%d writes, want 2: one with a fresh heartbeat after the start, one for the changed message", n)
	}
	h.noEvent()
	// A status change keeps nothing of the old transition.
	h.source.obs <- absent
	c := h.waitCondition(v1.ConditionFalse)
	if !c.LastTransitionTime.Time.Equal(t0) {
		t.Fatalf("transition time %v, want %v", c.LastTransitionTime, t0)
	}
}

func TestConditionWriteRetried(t *testing.T) {
	var mu sync.Mutex
	failures := 3
	h := start(t, harnessOpts{detection: true, setup: func(c *fake.Clientset) {
		c.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
			mu.Lock()
			defer mu.Unlock()
			if a.GetSubresource() == "status" && failures > 0 {
				failures--
				return true, nil, errors.New("connection refused")
			}
			return false, nil, nil
		})
	}})
	h.source.obs <- present
	h.waitCondition(v1.ConditionTrue)
	if got := value(h.d.metrics.errors.WithLabelValues(ErrorConditionWrite)); got != 3 {
		t.Fatalf("condition_write errors %v, want 3", got)
	}
	h.expectEvent("Normal RebootRequired")
	h.noEvent()
}

func TestRebootWhenAuthorized(t *testing.T) {
	h := start(t, harnessOpts{detection: true})
	h.source.obs <- present
	h.waitCondition(v1.ConditionTrue)
	h.expectEvent("Normal RebootRequired")

	h.annotate(authorization(bootA))
	select {
	case <-h.rebooter.called:
	case <-time.After(10 * time.Second):
		t.Fatal("no reboot")
	}
	n := h.node()
	if got := n.Annotations[contract.AnnotationRebooting]; got != bootA {
		t.Fatalf("rebooting annotation %q, want %q", got, bootA)
	}
	h.expectEvent("Normal Rebooting")
	// More node updates never issue a second reboot.
	for i := range 5 {
		h.annotate(map[string]*string{"touch": ptr.To(fmt.Sprint(i))})
	}
	h.waitAgent("the last update", annotated("touch", "4"))
	h.source.obs <- absent // and a sync point for the loops
	h.waitCondition(v1.ConditionFalse)
	if got := h.rebooter.Calls(); got != 1 {
		t.Fatalf("%d reboots, want 1", got)
	}
	waitMetric(t, h.d.metrics.rebootsIssued, 1)
	// The detector wrote only its own annotation.
	for k := range n.Annotations {
		if _, controllers := authorized(bootA)[k]; k != contract.AnnotationRebooting && !controllers {
			t.Errorf("unexpected annotation %s", k)
		}
	}
}

// TestReportOnlyNeverReboots: without a Rebooter (--reboot-method=none, the
// sentinel container) an authorization of the current boot is not acted on:
// no reboot, no nodereboot.io/rebooting, no Rebooting event; the condition
// is still reported.
func TestReportOnlyNeverReboots(t *testing.T) {
	h := start(t, harnessOpts{detection: true, reportOnly: true})
	h.source.obs <- present
	h.waitCondition(v1.ConditionTrue)
	h.expectEvent("Normal RebootRequired")
	h.annotate(authorization(bootA))
	h.waitNode("authorized", func(n *v1.Node) bool { return n.Annotations[contract.AnnotationRebootAuthorized] == bootA })
	// A sync point after the authorization was seen: the next observation.
	h.source.obs <- absent
	h.waitCondition(v1.ConditionFalse)
	h.expectEvent("Normal RebootNotRequired")
	h.noEvent()
	if v, ok := h.node().Annotations[contract.AnnotationRebooting]; ok {
		t.Fatalf("a report-only detector wrote %s=%q", contract.AnnotationRebooting, v)
	}
	if got := h.rebooter.Calls(); got != 0 {
		t.Fatalf("%d reboots, want 0", got)
	}
}

func TestNewNeedsDetectionWithoutRebooter(t *testing.T) {
	bootFile := filepath.Join(t.TempDir(), "boot_id")
	if err := os.WriteFile(bootFile, []byte(bootA), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Client: fromclientset.New(fake.NewClientset()), NodeName: nodeName, BootIDFile: bootFile})
	if err == nil || !strings.Contains(err.Error(), "Detection") {
		t.Fatalf("New without Rebooter and Detection: %v", err)
	}
}

func TestRebootFailureRetriedWithBackoff(t *testing.T) {
	h := start(t, harnessOpts{detection: false, failures: 2})
	h.annotate(authorization(bootA))
	for range 3 {
		select {
		case <-h.rebooter.called:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d reboot attempts", h.rebooter.Calls())
		}
	}
	h.expectEvent("Normal Rebooting")
	h.expectEvent("Warning RebootFailed Reboot failed, retrying in")
	h.expectEvent("Normal Rebooting Rebooting: nodereboot.io/reboot-authorized equals the current boot ID " + bootA + " (issued again")
	h.expectEvent("Warning RebootFailed")
	h.expectEvent("Normal Rebooting")
	if got := value(h.d.metrics.errors.WithLabelValues(ErrorReboot)); got != 2 {
		t.Fatalf("reboot errors %v, want 2", got)
	}
	waitMetric(t, h.d.metrics.rebootsIssued, 1)
	h.rebooter.mu.Lock()
	overlap := h.rebooter.overlap
	h.rebooter.mu.Unlock()
	if overlap {
		t.Fatal("two reboots ran at once")
	}
	// Nothing was ever written to the status: reboot-only mode.
	if n := h.statusPatches(); n != 0 {
		t.Fatalf("%d status patches with detection off", n)
	}
}

func TestRebootRetryStopsWhenAuthorizationWithdrawn(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	h := start(t, harnessOpts{detection: false, failures: 100, clock: clk})
	h.annotate(authorization(bootA))
	<-h.rebooter.called
	h.expectEvent("Normal Rebooting")
	h.expectEvent("Warning RebootFailed")
	// The controller gives up and removes the authorization while the
	// detector waits out its backoff (the fake clock does not move).
	h.annotate(map[string]*string{contract.AnnotationRebootAuthorized: nil})
	h.waitNode("rebooting annotation removed", func(n *v1.Node) bool {
		_, ok := n.Annotations[contract.AnnotationRebooting]
		return !ok
	})
	clk.Step(time.Hour)
	h.annotate(map[string]*string{"sync": ptr.To("1")})
	h.waitAgent("a later update", annotated("sync", "1"))
	select {
	case <-h.rebooter.called:
		t.Fatal("reboot attempted after the authorization was withdrawn")
	default:
	}
}

func TestInvalidAuthorization(t *testing.T) {
	h := start(t, harnessOpts{detection: false})
	h.annotate(authorization("yes"))
	h.expectEvent("Warning InvalidAnnotation nodereboot.io/reboot-authorized=\"yes\" is not a boot ID")
	// The same value again and again: one warning.
	for i := range 5 {
		h.annotate(map[string]*string{"touch": ptr.To(fmt.Sprint(i))})
	}
	h.annotate(authorization(bootC))
	h.expectEvent("Warning InvalidAnnotation nodereboot.io/reboot-authorized=\"" + bootC + "\" is not the current boot ID")
	h.noEvent()
	if got := value(h.d.metrics.errors.WithLabelValues(ErrorInvalidAnnotation)); got != 2 {
		t.Fatalf("invalid_annotation errors %v, want 2", got)
	}
	if h.rebooter.Calls() != 0 {
		t.Fatal("garbage led to a reboot")
	}
	if _, ok := h.node().Annotations[contract.AnnotationRebooting]; ok {
		t.Fatal("rebooting annotation written for garbage")
	}
}

func TestAfterReboot(t *testing.T) {
	node := newNode(map[string]string{
		contract.AnnotationRebootAuthorized: bootB,
		contract.AnnotationRebooting:        bootB,
		contract.AnnotationState:            string(contract.StateAuthorized),
	})
	h := start(t, harnessOpts{detection: true, node: node})
	h.expectEvent("Normal Rebooted Node rebooted: boot ID " + bootB + " -> " + bootA)
	n := h.waitNode("rebooting removed", func(n *v1.Node) bool {
		_, ok := n.Annotations[contract.AnnotationRebooting]
		return !ok
	})
	if n.Annotations[contract.AnnotationRebootAuthorized] != bootB {
		t.Fatal("the detector touched the controller's authorization")
	}
	select {
	case <-h.source.probes:
	case <-time.After(10 * time.Second):
		t.Fatal("no immediate sentinel observation after the boot")
	}
	// The stale authorization stays until the controller clears it: no
	// warning about it, no reboot.
	h.annotate(map[string]*string{"touch": ptr.To("1")})
	h.source.obs <- absent
	h.waitCondition(v1.ConditionFalse)
	h.expectEvent("Normal RebootNotRequired")
	h.waitAgent("the update", annotated("touch", "1"))
	h.noEvent()
	if h.rebooter.Calls() != 0 {
		t.Fatal("rebooted on a stale authorization")
	}
}

func TestResumeInterruptedReboot(t *testing.T) {
	ann := authorized(bootA)
	ann[contract.AnnotationRebooting] = bootA
	node := newNode(ann)
	h := start(t, harnessOpts{detection: false, node: node})
	select {
	case <-h.rebooter.called:
	case <-time.After(10 * time.Second):
		t.Fatal("the interrupted reboot was not issued again")
	}
	h.expectEvent("Normal Rebooting")
	// The only write is the commitment again: the same value, with the
	// node's resourceVersion as precondition (it changes nothing).
	for _, a := range h.client.Actions() {
		if a.GetVerb() != "patch" {
			continue
		}
		want := `{"metadata":{"annotations":{"` + contract.AnnotationRebooting + `":"` + bootA + `"}`
		if p := string(a.(k8stesting.PatchAction).GetPatch()); !strings.HasPrefix(p, want) {
			t.Fatalf("unexpected patch %s", p)
		}
	}
	if got := h.node().Annotations[contract.AnnotationRebooting]; got != bootA {
		t.Fatalf("%s = %q", contract.AnnotationRebooting, got)
	}
}

// Regression test (found by the garbage-annotations fault, e2e/faults): the
// detector read reboot-authorized = its boot ID, then somebody changed the
// authorization (a user's garbage; the controller withdrawing it after a
// timeout) before the detector wrote its rebooting annotation, and the
// detector rebooted anyway on what it had read. The commitment now carries
// the resourceVersion the decision was made on: the API server refuses it
// when the node changed, and the detector decides again on the new version.
func TestRebootCommitmentLosesToAConcurrentChange(t *testing.T) {
	var mu sync.Mutex
	raced := false
	h := start(t, harnessOpts{detection: false, node: func() *v1.Node {
		n := newNode(nil)
		n.ResourceVersion = "10"
		return n
	}(), setup: func(c *fake.Clientset) {
		// The API server's precondition: a patch that names a
		// resourceVersion other than the node's is refused.
		c.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
			var body struct {
				Metadata struct {
					ResourceVersion string `json:"resourceVersion"`
				} `json:"metadata"`
			}
			_ = json.Unmarshal(a.(k8stesting.PatchAction).GetPatch(), &body)
			if a.GetSubresource() != "" || body.Metadata.ResourceVersion == "" {
				return false, nil, nil
			}
			gvr := v1.SchemeGroupVersion.WithResource("nodes")
			obj, err := c.Tracker().Get(gvr, "", nodeName)
			if err != nil {
				return true, nil, err
			}
			cur := obj.(*v1.Node)
			mu.Lock()
			defer mu.Unlock()
			if !raced && cur.Annotations[contract.AnnotationRebootAuthorized] == bootA {
				// The concurrent write lands first: a wrong boot ID.
				raced = true
				cur = cur.DeepCopy()
				cur.Annotations[contract.AnnotationRebootAuthorized] = bootC
				cur.ResourceVersion = "12"
				if err := c.Tracker().Update(gvr, cur, ""); err != nil {
					return true, nil, err
				}
			}
			if body.Metadata.ResourceVersion != cur.ResourceVersion {
				return true, nil, apierrors.NewConflict(v1.Resource("nodes"), nodeName, errors.New("the object has been modified"))
			}
			return false, nil, nil
		})
	}})
	n := h.node()
	n.Annotations = authorized(bootA)
	n.ResourceVersion = "11"
	if _, err := h.client.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The decision on version 11 (authorized) loses; version 12 holds a
	// wrong boot ID: a warning, no commitment, no reboot.
	h.expectEvent("Warning InvalidAnnotation")
	h.annotate(map[string]*string{"sync": ptr.To("1")})
	h.waitAgent("a later update", annotated("sync", "1"))
	if got := h.rebooter.Calls(); got != 0 {
		t.Fatalf("%d reboots on an authorization changed before the commitment", got)
	}
	if _, ok := h.node().Annotations[contract.AnnotationRebooting]; ok {
		t.Fatal("committed to a reboot on a changed authorization")
	}
	mu.Lock()
	defer mu.Unlock()
	if !raced {
		t.Fatal("the commitment was not made with a resourceVersion precondition")
	}
}

func TestEventRecorderWritesNodeEvents(t *testing.T) {
	client := fake.NewClientset()
	ctx := context.Background()
	r := newEventRecorder(ctx, fromclientset.New(client), nodeName)
	r.Eventf(contract.NodeRef(nodeName), v1.EventTypeWarning, contract.ReasonInvalidAnnotation, "value %q", "yes")
	r.Stop(10 * time.Second)
	events, err := client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if err != nil || len(events.Items) != 1 {
		t.Fatalf("events in default: %v, %v; want the one recorded, written before Stop returned", events, err)
	}
	e := events.Items[0]
	if e.InvolvedObject.Kind != "Node" || e.InvolvedObject.Name != nodeName || string(e.InvolvedObject.UID) != nodeName ||
		e.Reason != contract.ReasonInvalidAnnotation || e.Source.Component != contract.DetectorComponent || e.Source.Host != nodeName {
		t.Fatalf("event %+v", e)
	}
}

func TestNoRebootBeforeTheAnnotationIsWritten(t *testing.T) {
	var mu sync.Mutex
	failures := 2
	h := start(t, harnessOpts{detection: false, setup: func(c *fake.Clientset) {
		c.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
			mu.Lock()
			defer mu.Unlock()
			if a.GetSubresource() == "" && failures > 0 {
				failures--
				return true, nil, errors.New("the server is currently unable to handle the request")
			}
			return false, nil, nil
		})
	}})
	h.annotate(authorization(bootA))
	select {
	case <-h.rebooter.called:
	case <-time.After(10 * time.Second):
		t.Fatal("no reboot after the API came back")
	}
	if got := value(h.d.metrics.errors.WithLabelValues(ErrorAnnotationWrite)); got != 2 {
		t.Fatalf("annotation_write errors %v, want 2", got)
	}
	if got := h.node().Annotations[contract.AnnotationRebooting]; got != bootA {
		t.Fatalf("rebooted, but %s is %q", contract.AnnotationRebooting, got)
	}
	if h.rebooter.Calls() != 1 {
		t.Fatalf("%d reboots", h.rebooter.Calls())
	}
	h.expectEvent("Normal Rebooting")
}

// blockingRebooter holds every reboot request until the test releases it,
// as a slow `systemctl reboot` does while the host starts going down.
type blockingRebooter struct {
	started chan struct{}
	release chan error
	mu      sync.Mutex
	calls   int
}

func (b *blockingRebooter) Reboot(ctx context.Context) error {
	b.mu.Lock()
	b.calls++
	b.mu.Unlock()
	b.started <- struct{}{}
	select {
	case err := <-b.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *blockingRebooter) Calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

// Regression test (the demo once showed several Rebooting events for one
// node within a second): between the reboot request and the moment the
// host stops the detector, the node keeps changing (the controller's
// annotations, NotReady, the authorization withdrawn and granted again, our
// own rebooting annotation removed by somebody). One authorization leads to
// one reboot request and one Rebooting event per detector process, whether
// the node changes while the request runs or after it was accepted.
func TestOneRebootRequestWhileGoingDown(t *testing.T) {
	b := &blockingRebooter{started: make(chan struct{}, 10), release: make(chan error)}
	h := start(t, harnessOpts{detection: true, rebooter: b})
	h.source.obs <- present
	h.waitCondition(v1.ConditionTrue)
	h.expectEvent("Normal RebootRequired")

	h.annotate(authorization(bootA))
	select {
	case <-b.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no reboot request")
	}
	h.expectEvent("Normal Rebooting")
	churn := func(round string) {
		for _, ann := range []map[string]*string{
			{contract.AnnotationState: ptr.To(string(contract.StateAuthorized)), "touch": ptr.To(round + "0")},
			{contract.AnnotationRebootAuthorized: nil, "touch": ptr.To(round + "1")},
			{contract.AnnotationRebootAuthorized: ptr.To(bootA), "touch": ptr.To(round + "2")},
			{contract.AnnotationRebooting: nil, "touch": ptr.To(round + "3")},
			{contract.AnnotationRebooting: ptr.To(bootA), "touch": ptr.To(round + "4")},
		} {
			h.annotate(ann)
		}
		n := h.node()
		n.Status.Conditions[0].Status = v1.ConditionFalse // NotReady: the kubelet stops
		if _, err := h.client.CoreV1().Nodes().UpdateStatus(context.Background(), n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// While the request runs.
	churn("a")
	b.release <- nil
	waitMetric(t, h.d.metrics.rebootsIssued, 1)
	// After it was accepted, while the host goes down.
	churn("b")
	// Sync point: a condition change is handled after every node event
	// above (the loops are fed by the same informer, in order).
	h.source.obs <- absent
	h.waitCondition(v1.ConditionFalse)
	h.expectEvent("Normal RebootNotRequired")
	h.annotate(map[string]*string{"touch": ptr.To("last")})
	h.waitAgent("the last update", annotated("touch", "last"))
	if got := b.Calls(); got != 1 {
		t.Fatalf("%d reboot requests for one authorization, want 1", got)
	}
	h.noEvent() // no second Rebooting event
	// An accepted request is never undone: the annotation stays for the
	// next boot to prove the reboot.
	if got := h.node().Annotations[contract.AnnotationRebooting]; got != bootA {
		t.Fatalf("%s = %q after the accepted request, want %q", contract.AnnotationRebooting, got, bootA)
	}
}

// A failed reboot request is retried only after its backoff, however often
// the node changes meanwhile; then exactly once more.
func TestFailedRebootRetriedOnlyAfterBackoff(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	h := start(t, harnessOpts{detection: false, failures: 1, clock: clk})
	h.annotate(authorization(bootA))
	<-h.rebooter.called
	h.expectEvent("Normal Rebooting")
	h.expectEvent("Warning RebootFailed")
	for i := range 10 {
		h.annotate(map[string]*string{"touch": ptr.To(fmt.Sprint(i))})
	}
	h.waitAgent("the updates", annotated("touch", "9"))
	// The fake clock has not moved: whatever the loop did with those
	// updates, the backoff has not passed.
	if got := h.rebooter.Calls(); got != 1 {
		t.Fatalf("%d reboot attempts during the backoff, want 1", got)
	}
	clk.Step(time.Minute) // past the backoff (10ms doubling to 40ms in the harness)
	select {
	case <-h.rebooter.called:
	case <-time.After(10 * time.Second):
		t.Fatal("no retry after the backoff")
	}
	h.expectEvent("Normal Rebooting")
	waitMetric(t, h.d.metrics.rebootsIssued, 1)
	for i := range 5 {
		h.annotate(map[string]*string{"touch": ptr.To(fmt.Sprint("after", i))})
	}
	h.waitAgent("the updates", annotated("touch", "after4"))
	clk.Step(time.Hour)
	h.annotate(map[string]*string{"touch": ptr.To("last")})
	h.waitAgent("the last update", annotated("touch", "last"))
	if got := h.rebooter.Calls(); got != 2 {
		t.Fatalf("%d reboot attempts, want 2 (one failed, one accepted)", got)
	}
	h.noEvent()
}
