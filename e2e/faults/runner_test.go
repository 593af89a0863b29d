package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/faults/results"
	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/harness"
	"github.com/nodereboot/nodereboot/e2e/nodesim"
	"github.com/nodereboot/nodereboot/e2e/observer"
)

// scenario is one fault and the rollout it is injected into.
type scenario struct {
	name string
	// fast: part of the fast subset (make test).
	fast bool
	// runs in the full suite (default 3).
	runs int
	// nodes in the cluster (default 5); the first reboot of them need a
	// reboot (default 4); maxConcurrent is the controller's (default 2).
	nodes, reboot, maxConcurrent int
	// args are extra controller flags (they override the defaults).
	args []string
	// gated: the detectors' reboot requests go through the simulator's gate.
	gated bool
	// forceReboot: the controller runs with --on-drain-failure=reboot.
	forceReboot bool
	// budgetDips: the fault takes pods away without an eviction (or
	// forces reboots with pods left): budgets may dip.
	budgetDips bool
	// lostEvents: the fault may lose events (a SIGKILL between a write and
	// its event; an event recorded while the API server is down by a
	// process that exits before it is back: a detector whose node reboots).
	lostEvents bool
	// setup runs before the sentinels are created; inject is the fault, in
	// the test goroutine, returning when the fault is over; after runs once
	// the rollout ended, before the final checks.
	setup, inject, after func(r *run)
	// recovered, when set, is the sign that the system recovered from the
	// fault (default: the next step of the rollout after the fault).
	recovered func(r *run, v observer.View) bool
}

func (sc scenario) withDefaults() scenario {
	if sc.nodes == 0 {
		sc.nodes = 5
	}
	if sc.reboot == 0 {
		sc.reboot = 4
	}
	if sc.maxConcurrent == 0 {
		sc.maxConcurrent = 2
	}
	if sc.runs == 0 {
		sc.runs = 3
	}
	return sc
}

// run is one run of a scenario.
type run struct {
	t      *testing.T
	sc     scenario
	ctx    context.Context
	h      *harness.Harness
	obs    *observer.Observer
	rng    *rand.Rand
	seed   uint64
	expect observer.Expect
	// detail says what the fault did, for the report.
	detail []string
	// supervisor restarts controller replicas that exit, as the kubelet
	// restarts a container.
	supervisor *supervisor
	// target is the node the fault is aimed at, when there is one.
	target string
}

func full() bool { return os.Getenv("NODEREBOOT_FAULTS") == "full" }

// runScenarios runs each scenario (the fast ones only, unless full) as a
// subtest, several times in the full suite.
func runScenarios(t *testing.T, scenarios []scenario) {
	only := regexp.MustCompile(".")
	if s := os.Getenv("NODEREBOOT_FAULTS_ONLY"); s != "" {
		only = regexp.MustCompile(s)
	}
	for _, sc := range scenarios {
		sc = sc.withDefaults()
		if !only.MatchString(sc.name) || (!sc.fast && !full()) {
			continue
		}
		runs := 1
		if full() {
			runs = sc.runs
		}
		if s := os.Getenv("NODEREBOOT_FAULTS_RUNS"); s != "" {
			if n, err := strconv.Atoi(s); err == nil && n > 0 {
				runs = n
			}
		}
		t.Run(sc.name, func(t *testing.T) {
			for i := range runs {
				t.Run(strconv.Itoa(i), func(t *testing.T) { runOnce(t, sc, i) })
			}
		})
	}
}

func seedFor(name string, i int) uint64 {
	if s := os.Getenv("NODEREBOOT_FAULTS_SEED"); s != "" {
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			return n
		}
	}
	return uint64(time.Now().UnixNano()) ^ uint64(len(name))<<48 ^ uint64(i)<<40
}

// baseArgs are the controller flags of every run: fast leader election
// and retries, bounded drains and reboots.
func baseArgs(maxConcurrent int) []string {
	return []string{
		"--max-concurrent=" + strconv.Itoa(maxConcurrent),
		"--eviction-retry-delay=1s",
		"--drain-timeout=30s",
		"--drain-failure-backoff=5s",
		"--reboot-timeout=60s",
		"--leader-elect-lease-duration=6s",
		"--leader-elect-renew-deadline=4s",
		"--leader-elect-retry-period=1s",
		"-v=2",
	}
}

func runOnce(t *testing.T, sc scenario, i int) {
	seed := seedFor(sc.name, i)
	t.Logf("fault %s run %d: seed %d (NODEREBOOT_FAULTS_SEED=%d replays it)", sc.name, i, seed, seed)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	opts := framework.Options{Nodes: sc.nodes, BinDir: binDir, AuditPolicy: observer.AuditPolicy}
	if keep := os.Getenv("E2E_KEEP_DIR"); keep != "" {
		opts.Dir = filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
	}
	args := baseArgs(sc.maxConcurrent)
	if sc.forceReboot {
		args = append(args, "--on-drain-failure=reboot")
	}
	h := harness.Setup(t, harness.Config{
		Cluster:            opts,
		RebootDelay:        time.Second,
		Detectors:          true,
		DetectorArgs:       []string{"-v=2"},
		GatedReboots:       sc.gated,
		ControllerReplicas: 2,
		ControllerArgs:     append(args, sc.args...),
		Workload:           &harness.Workload{Replicas: int32(2 * sc.nodes)},
	})
	r := &run{t: t, sc: sc, ctx: ctx, h: h, seed: seed, rng: rand.New(rand.NewPCG(seed, seed>>1|1)),
		expect: observer.Expect{Outcomes: map[string]observer.Outcome{}, LostEventsAllowed: sc.lostEvents,
			BudgetDipsAllowed: sc.budgetDips || sc.forceReboot}}
	r.supervisor = supervise(h.Controllers)
	t.Cleanup(r.supervisor.stop)
	if err := createDaemonSet(ctx, h.Cluster); err != nil {
		t.Fatal(err)
	}
	obs, err := observer.Start(ctx, observer.Config{
		Client: h.Cluster.Client, MaxConcurrent: sc.maxConcurrent, ForceReboot: sc.forceReboot,
		AuditLog: h.Cluster.AuditLog(), Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(obs.Stop)
	r.obs = obs
	for _, n := range h.Nodes {
		obs.AddHost(n.Name(), n.LogFile())
	}
	for _, n := range r.rebootNodes() {
		r.expect.Outcomes[n.Name()] = observer.Rebooted
	}
	if sc.setup != nil {
		sc.setup(r)
	}
	start := time.Now()
	for _, n := range r.rebootNodes() {
		if err := n.CreateSentinel(); err != nil {
			t.Fatal(err)
		}
	}
	if sc.inject != nil {
		sc.inject(r)
	}
	faultEnd := time.Now()
	var recoveredAt time.Time
	progress := -1
	// A rollout this slow is stuck somewhere: say where, once, while it is.
	var slowMu sync.Mutex
	slowDone := false
	slow := time.AfterFunc(60*time.Second, func() {
		slowMu.Lock()
		defer slowMu.Unlock()
		if !slowDone {
			t.Logf("the rollout is still running after 60s")
			r.dumpWorkload()
		}
	})
	defer func() {
		slow.Stop()
		slowMu.Lock()
		slowDone = true
		slowMu.Unlock()
	}()
	endCtx, endCancel := context.WithTimeout(ctx, 4*time.Minute)
	err = obs.WaitFor(endCtx, "the end of the rollout", func(v observer.View) bool {
		if progress < 0 {
			progress = v.Progress()
		}
		ended := r.ended(v)
		if recoveredAt.IsZero() {
			rec := v.Progress() > progress
			if sc.recovered != nil {
				rec = sc.recovered(r, v)
			}
			if rec || (ended && sc.recovered == nil) {
				recoveredAt = time.Now()
			}
		}
		return ended
	})
	endCancel()
	rollout := time.Since(start)
	if err != nil {
		t.Errorf("the rollout did not end (livelock?): %v", err)
	}
	if err == nil && sc.recovered != nil && recoveredAt.IsZero() {
		// The fault's sign may come after the last pipeline ended (the
		// sentinel back on the node rebooted last: its detector reports it
		// after its restart, when the rollout is already over). Watch for
		// it a while longer; not seen, the recovery stays "never".
		recCtx, recCancel := context.WithTimeout(ctx, 30*time.Second)
		_ = obs.WaitFor(recCtx, "the fault's sign of recovery", func(v observer.View) bool {
			if sc.recovered(r, v) {
				recoveredAt = time.Now()
				return true
			}
			return false
		})
		recCancel()
	}
	if sc.after != nil && err == nil {
		sc.after(r)
	}
	finCtx, finCancel := context.WithTimeout(ctx, 30*time.Second)
	rep := obs.Finish(finCtx, r.expect)
	finCancel()

	res := results.Result{Fault: sc.name, Run: i, Seed: seed, RolloutSeconds: rollout.Seconds(),
		LostEvents: rep.LostEvents, LeftCordoned: rep.LeftCordoned, NotReady: rep.NotReady, Failed: rep.FailedWithReason,
		Reboots: rep.Reboots, MaxOut: rep.MaxOut, Evictions: rep.Evictions, Refused: rep.EvictionsRefused,
		Detail: strings.Join(r.detail, "; "), Violations: []string{}}
	if !recoveredAt.IsZero() {
		// Seen recovered before the injection returned: 0.
		rec := max(0, recoveredAt.Sub(faultEnd).Seconds())
		res.RecoverySeconds = &rec
	}
	for _, v := range rep.Violations {
		res.Violations = append(res.Violations, v.String())
		t.Errorf("invariant violated: %s", v)
	}
	if err != nil {
		res.Violations = append(res.Violations, "I5 the rollout did not end")
	}
	res.Passed = len(res.Violations) == 0 && !t.Failed()
	recovery := "never"
	if res.RecoverySeconds != nil {
		recovery = fmt.Sprintf("%.1fs", *res.RecoverySeconds)
	}
	t.Logf("fault %s run %d: %s; rollout %.1fs, recovery %s, %d reboots, max %d out, %d evictions (%d refused), lost events %d, failed %v, not ready %v",
		sc.name, i, res.Detail, res.RolloutSeconds, recovery, res.Reboots, res.MaxOut, res.Evictions, res.Refused,
		len(res.LostEvents), res.Failed, res.NotReady)
	for _, l := range rep.LostEvents {
		t.Logf("lost event (allowed for this fault): %s", l)
	}
	for _, d := range rep.BudgetDips {
		t.Logf("budget below its minimum (allowed for this fault): %s", d)
	}
	for _, n := range rep.Notes {
		t.Logf("note: %s", n)
	}
	if t.Failed() {
		r.dumpWorkload()
		t.Logf("nodes out, over time:\n%s", obs.Timeline())
		for _, n := range h.Nodes {
			t.Logf("history of %s:\n%s", n.Name(), obs.History(n.Name()))
		}
	}
	writeResult(t, res)
}

var resultsMu sync.Mutex

func writeResult(t *testing.T, res results.Result) {
	path := os.Getenv("NODEREBOOT_FAULTS_RESULTS")
	if path == "" {
		return
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Error(err)
		return
	}
	resultsMu.Lock()
	defer resultsMu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, string(b))
}

// ended: every node came to its expected outcome and none is in the
// pipeline but Failed ones.
func (r *run) ended(v observer.View) bool {
	for _, n := range v.Nodes() {
		if s, _ := v.State(n); s != "" && s != "Failed" {
			return false
		}
	}
	for node, want := range r.expect.Outcomes {
		s, exists := v.State(node)
		switch want {
		case observer.Rebooted:
			if !exists || v.Reboots(node) == 0 || s != "" {
				return false
			}
		case observer.Failed:
			if !exists || s != "Failed" {
				return false
			}
		case observer.GivenBack:
			if !exists || s != "" || v.Events(node, "nodereboot-controller", "DrainFailed") == 0 {
				return false
			}
		}
	}
	return true
}

// rebootNodes are the simulated hosts that need a reboot.
func (r *run) rebootNodes() []*nodesim.Node { return r.h.Nodes[:r.sc.reboot] }

func (r *run) logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.detail = append(r.detail, s)
	r.t.Log("fault: " + s)
}

// jitter waits a random time below max: where in the step the fault lands.
// It is the fault's timing, drawn from the run's seed, not a wait for
// anything.
func (r *run) jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	d := time.Duration(r.rng.Int64N(int64(max)))
	time.Sleep(d)
	return d
}

// waitState waits until one of the nodes reaches the state and returns it
// (the first in node order).
func (r *run) waitState(state string, nodes ...string) string {
	r.t.Helper()
	if len(nodes) == 0 {
		for _, n := range r.rebootNodes() {
			nodes = append(nodes, n.Name())
		}
	}
	var found string
	if err := r.obs.WaitFor(r.ctx, "a node in state "+state, func(v observer.View) bool {
		for _, n := range nodes {
			if s, _ := v.State(n); s == state {
				found = n
				return true
			}
		}
		return false
	}); err != nil {
		r.t.Fatal(err)
	}
	return found
}

// pick is a random element.
func pick[T any](r *run, xs []T) T { return xs[r.rng.IntN(len(xs))] }

// patchNode writes a merge patch as an administrator would with kubectl.
func (r *run) patchNode(node string, annotations map[string]any) {
	r.t.Helper()
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if _, err := r.h.Cluster.Client.CoreV1().Nodes().Patch(r.ctx, node, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		r.t.Fatalf("patch %s: %v", node, err)
	}
}

// createDaemonSet puts a DaemonSet on every node: its pods are never
// evicted and do not block a drain.
func createDaemonSet(ctx context.Context, c *framework.Cluster) error {
	labels := map[string]string{"app": "node-agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "node-agent", Namespace: "demo"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:   []corev1.Container{{Name: "agent", Image: "registry.k8s.io/pause:3.10"}},
					NodeSelector: map[string]string{"type": "kwok"},
					Tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				},
			},
		},
	}
	_, err := c.Client.AppsV1().DaemonSets("demo").Create(ctx, ds, metav1.CreateOptions{})
	return err
}

// supervisor restarts the controller replicas that exit (a lost leadership
// exits 1; a test kills one), after a second, as the kubelet restarts a
// container.
type supervisor struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func supervise(ps []*framework.Process) *supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	s := &supervisor{cancel: cancel}
	for _, p := range ps {
		s.wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-p.Exited():
				}
				select { // the restart backoff
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				_ = p.Start()
			}
		})
	}
	return s
}

func (s *supervisor) stop() {
	s.cancel()
	s.wg.Wait()
}

// pinnedDeployment is a Deployment of replicas pods on one node.
func pinnedDeployment(name, node string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:   []corev1.Container{{Name: name, Image: "registry.k8s.io/pause:3.10"}},
					NodeSelector: map[string]string{"kubernetes.io/hostname": node},
				},
			},
		},
	}
}

// dumpWorkload logs the pods and budgets of the demo namespace, for a
// failure report.
func (r *run) dumpWorkload() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := r.h.Cluster.Client
	var b strings.Builder
	if pods, err := c.CoreV1().Pods("demo").List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			ready := "?"
			for _, cd := range p.Status.Conditions {
				if cd.Type == corev1.PodReady {
					ready = string(cd.Status)
				}
			}
			fmt.Fprintf(&b, "pod %s node=%s phase=%s ready=%s deleting=%v\n", p.Name, p.Spec.NodeName, p.Status.Phase, ready, p.DeletionTimestamp != nil)
		}
	}
	if rss, err := c.AppsV1().ReplicaSets("demo").List(ctx, metav1.ListOptions{}); err == nil {
		for _, rs := range rss.Items {
			fmt.Fprintf(&b, "replicaset %s spec=%d status: replicas=%d ready=%d available=%d observedGeneration=%d/%d\n", rs.Name,
				ptr.Deref(rs.Spec.Replicas, 0), rs.Status.Replicas, rs.Status.ReadyReplicas, rs.Status.AvailableReplicas, rs.Status.ObservedGeneration, rs.Generation)
		}
	}
	if pdbs, err := c.PolicyV1().PodDisruptionBudgets("demo").List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pdbs.Items {
			st := p.Status
			fmt.Fprintf(&b, "pdb %s healthy=%d desired=%d expected=%d allowed=%d disrupted=%v\n",
				p.Name, st.CurrentHealthy, st.DesiredHealthy, st.ExpectedPods, st.DisruptionsAllowed, st.DisruptedPods)
		}
	}
	r.t.Logf("workload at the end:\n%s", b.String())
}
