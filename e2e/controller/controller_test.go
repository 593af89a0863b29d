package controller_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// Three nodes need a reboot (their detectors see the sentinel); with
// --max-concurrent 1 they reboot one after another, each exactly once; their
// pods are evicted and rescheduled; a node that an administrator cordoned
// stays cordoned after its reboot; a fourth node is left alone.
func TestRollingRebootOneAtATime(t *testing.T) {
	e := setup(t, 4, 6*time.Minute)
	start := time.Now()
	e.deployWorkload("web", 8, nil, maxUnavailable(1))
	if out, err := e.c.Kubectl(e.ctx, "cordon", "node-2"); err != nil {
		t.Fatalf("admin cordon: %v: %s", err, out)
	}
	before := map[string][]string{}
	for i := range 4 {
		e.startHost(nodeName(i), true)
		before[nodeName(i)] = e.podsOn(nodeName(i))
	}
	e.startController("controller-0")
	for i := range 3 {
		if err := e.sims[nodeName(i)].CreateSentinel(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		e.waitNode(nodeName(i), rebootDone, "reboot completed")
	}
	t.Logf("3 rolling reboots done in %s", time.Since(start).Round(time.Millisecond))

	if m := e.out.Max(); m != 1 {
		t.Errorf("%d nodes out at once, want at most (and at some point) 1", m)
	}
	for i := range 3 {
		name := nodeName(i)
		if r := e.rebootsOf(name); len(r) != 1 {
			t.Errorf("%s rebooted %d times, want 1", name, len(r))
		}
		if n := e.out.Takes(name); n != 1 {
			t.Errorf("%s taken %d times, want 1", name, n)
		}
		after := e.podsOn(name)
		for _, p := range before[name] {
			if contains(after, p) {
				t.Errorf("pod %s survived the drain of %s", p, name)
			}
		}
	}
	if r := e.sims["node-3"].Reboots(); len(r) != 0 || e.out.Takes("node-3") != 0 {
		t.Errorf("node-3 needed no reboot but was taken %d times, rebooted %d times", e.out.Takes("node-3"), len(r))
	}
	for _, name := range []string{"node-0", "node-1"} {
		n, _ := e.c.Client.CoreV1().Nodes().Get(e.ctx, name, metav1.GetOptions{})
		if n.Spec.Unschedulable {
			t.Errorf("%s still cordoned after its reboot", name)
		}
		if _, ok := n.Annotations[contract.AnnotationCordonedByUs]; ok {
			t.Errorf("%s kept %s", name, contract.AnnotationCordonedByUs)
		}
	}
	n2, _ := e.c.Client.CoreV1().Nodes().Get(e.ctx, "node-2", metav1.GetOptions{})
	if !n2.Spec.Unschedulable {
		t.Errorf("node-2 was cordoned by an administrator and got uncordoned by the controller")
	}
	// The reboots did not overlap in time either.
	var spans [][2]time.Time
	for i := range 3 {
		if r := e.rebootsOf(nodeName(i)); len(r) > 0 {
			spans = append(spans, [2]time.Time{r[0].Requested, r[0].Up})
		}
	}
	for i := range spans {
		for j := range spans {
			if i != j && spans[i][0].Before(spans[j][1]) && spans[j][0].Before(spans[i][1]) {
				t.Errorf("reboots of %s and %s overlapped: %v %v", nodeName(i), nodeName(j), spans[i], spans[j])
			}
		}
	}
	// The workload is whole again, on schedulable nodes.
	e.waitAvailable("web", 8)
	// kubectl describe node shows the pipeline as events.
	evs := e.events("node-0")
	for _, r := range []string{contract.ReasonCordoned, contract.ReasonDraining, contract.ReasonDrained, contract.ReasonRebootAuthorized,
		contract.ReasonRebooted, contract.ReasonUncordoned, contract.ReasonRebootDone} {
		if !contains(evs, r) {
			t.Errorf("node-0 events %v lack %s", evs, r)
		}
	}
	if evs := e.events("node-2"); contains(evs, contract.ReasonUncordoned) || contains(evs, contract.ReasonCordoned) {
		t.Errorf("node-2 (admin-cordoned) events %v: the controller must neither cordon nor uncordon it", evs)
	}
	out, err := e.c.Kubectl(e.ctx, "describe", "node", "node-1")
	if err != nil || !strings.Contains(out, contract.ReasonRebootDone) {
		t.Errorf("kubectl describe node does not show %s: %v\n%s", contract.ReasonRebootDone, err, out)
	}
}

// Five nodes need a reboot; with --max-concurrent 2 never more than two are
// out at once, and two are.
func TestMaxConcurrentTwo(t *testing.T) {
	e := setup(t, 5, 6*time.Minute)
	start := time.Now()
	e.deployWorkload("web", 5, nil, maxUnavailable(2))
	for i := range 5 {
		e.startHost(nodeName(i), true)
	}
	e.startController("controller-0", "--max-concurrent=2")
	for i := range 5 {
		if err := e.sims[nodeName(i)].CreateSentinel(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		e.waitNode(nodeName(i), rebootDone, "reboot completed")
	}
	t.Logf("5 reboots, 2 at a time, done in %s", time.Since(start).Round(time.Millisecond))
	if m := e.out.Max(); m != 2 {
		t.Errorf("at most %d nodes out at once, want exactly 2", m)
	}
	for i := range 5 {
		if r := e.rebootsOf(nodeName(i)); len(r) != 1 {
			t.Errorf("%s rebooted %d times, want 1", nodeName(i), len(r))
		}
	}
}

// Two controller replicas; the leader is SIGKILLed in the middle of a drain
// (held up by a PodDisruptionBudget); the other takes over, finishes, and
// two nodes are never out at once.
func TestLeaderKilledMidDrain(t *testing.T) {
	e := setup(t, 3, 6*time.Minute)
	start := time.Now()
	// Two replicas pinned to node-0, and a budget that refuses every
	// eviction until the test deletes it.
	e.deployWorkload("pinned", 2, map[string]string{"kubernetes.io/hostname": "node-0"}, minAvailable(2))
	for i := range 3 {
		e.startHost(nodeName(i), true)
	}
	le := []string{"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"}
	ctrls := []*controller{e.startController("controller-a", le...), e.startController("controller-b", le...)}
	first := e.waitLeaseHolder("")

	if err := e.sims["node-0"].CreateSentinel(); err != nil {
		t.Fatal(err)
	}
	e.waitNode("node-0", inState(contract.StateDraining), "draining")
	if err := e.sims["node-1"].CreateSentinel(); err != nil {
		t.Fatal(err)
	}
	blocked := e.waitEvent("node-0", contract.ReasonEvictionBlocked)
	if !strings.Contains(blocked.Message, "work/pinned") {
		t.Errorf("EvictionBlocked does not name the PodDisruptionBudget: %q", blocked.Message)
	}

	var leader, standby *controller
	for _, c := range ctrls {
		// The standby may still be starting (its metrics not served yet).
		if err := framework.WaitServing(e.ctx, c.Process, "http://"+c.metricsAddr+"/healthz"); err != nil {
			t.Fatal(err)
		}
		v, err := c.metric("nodereboot_is_leader")
		if err != nil {
			t.Fatal(err)
		}
		if v == 1 {
			leader = c
		} else {
			standby = c
		}
	}
	if leader == nil || standby == nil {
		t.Fatalf("want one leader and one standby")
	}
	// Both are healthy and ready: the standby because its elector runs,
	// the leader because its caches are synced.
	for _, c := range ctrls {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, err := c.probe(path); err != nil || code != 200 {
				t.Errorf("%s %s: %d, %v", c.Name, path, code, err)
			}
		}
	}
	t.Logf("killing the leader %s (%s) mid-drain", leader.Name, first)
	leader.Kill()
	second := e.waitLeaseHolder(first)
	t.Logf("new leader %s", second)

	// The new leader resumes the drain; the budget gives way.
	if err := e.c.Client.PolicyV1().PodDisruptionBudgets(workNS).Delete(e.ctx, "pinned", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitNode("node-0", rebootDone, "reboot completed after failover")
	e.waitNode("node-1", rebootDone, "reboot completed after failover")
	t.Logf("failover scenario done in %s", time.Since(start).Round(time.Millisecond))
	if m := e.out.Max(); m != 1 {
		t.Errorf("%d nodes out at once across the failover, want 1", m)
	}
	for _, name := range []string{"node-0", "node-1"} {
		if r := e.rebootsOf(name); len(r) != 1 {
			t.Errorf("%s rebooted %d times, want 1", name, len(r))
		}
		if n := e.out.Takes(name); n != 1 {
			t.Errorf("%s taken %d times, want 1", name, n)
		}
	}
	if v, err := standby.metric("nodereboot_is_leader"); err != nil || v != 1 {
		t.Errorf("standby is_leader = %v, %v", v, err)
	}
	// The pinned pods come back on the uncordoned node.
	e.waitAvailable("pinned", 2)
}

// A condition set by a plain status patch (as node-problem-detector does;
// the detector runs in reboot-only mode) starts the pipeline, and so does a
// manual `kubectl annotate node X nodereboot.io/reboot-requested=yes`. The
// condition stays True after the reboot, as written before it: it is stale
// and ignored (no warning). Written True again after the reboot, it counts:
// a warning, and no second reboot within --min-reboot-interval.
func TestConditionPatchAndManualRequest(t *testing.T) {
	e := setup(t, 3, 5*time.Minute)
	start := time.Now()
	e.startHost("node-0", false)
	e.startHost("node-1", true)
	e.startHost("node-2", true)
	e.startController("controller-0")

	now := metav1.Now()
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{{
		Type: contract.DefaultConditionType, Status: corev1.ConditionTrue, Reason: "KernelUpdated",
		Message: "set by a status patch", LastHeartbeatTime: now, LastTransitionTime: now,
	}}}})
	if _, err := e.c.Client.CoreV1().Nodes().Patch(e.ctx, "node-0", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	if out, err := e.c.Kubectl(e.ctx, "annotate", "node", "node-1", contract.AnnotationRebootRequested+"=yes"); err != nil {
		t.Fatalf("kubectl annotate: %v: %s", err, out)
	}
	n0 := e.waitNode("node-0", rebootDone, "reboot after a status-patched condition")
	n1 := e.waitNode("node-1", rebootDone, "reboot after a manual request")
	if _, ok := n1.Annotations[contract.AnnotationRebootRequested]; ok {
		t.Errorf("%s not removed after the reboot", contract.AnnotationRebootRequested)
	}
	// node-0's condition is still True, as patched before the reboot: the
	// controller has looked at node-0 since its reboot (every node-0
	// update, and the admission pass that took the other node) and
	// ignored it.
	if evs := e.events("node-0"); contains(evs, contract.ReasonRebootTooSoon) {
		t.Errorf("node-0 events %v: %s on a condition written before the reboot", evs, contract.ReasonRebootTooSoon)
	}
	// Now it is written True again, after the reboot (a heartbeat later
	// than last-reboot at the API's second precision): no second reboot
	// before --min-reboot-interval, and a warning says so.
	last, err := contract.ParseTime(n0.Annotations[contract.AnnotationLastReboot])
	if err != nil {
		t.Fatal(err)
	}
	hb := metav1.NewTime(last.Add(time.Second))
	if time.Now().After(hb.Time) {
		hb = metav1.Now()
	}
	patch, _ = json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{{
		Type: contract.DefaultConditionType, Status: corev1.ConditionTrue, Reason: "KernelUpdated",
		Message: "set by a status patch, again", LastHeartbeatTime: hb, LastTransitionTime: now,
	}}}})
	if _, err := e.c.Client.CoreV1().Nodes().Patch(e.ctx, "node-0", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	again := e.waitEvent("node-0", contract.ReasonRebootTooSoon)
	if again.Type != corev1.EventTypeWarning {
		t.Errorf("%s is a %s event", contract.ReasonRebootTooSoon, again.Type)
	}
	t.Logf("status-patch and manual-request reboots done in %s", time.Since(start).Round(time.Millisecond))
	if m := e.out.Max(); m != 1 {
		t.Errorf("%d nodes out at once, want 1", m)
	}
	for _, name := range []string{"node-0", "node-1"} {
		if r := e.rebootsOf(name); len(r) != 1 {
			t.Errorf("%s rebooted %d times, want 1", name, len(r))
		}
	}
	if e.out.Takes("node-2") != 0 || len(e.sims["node-2"].Reboots()) != 0 {
		t.Errorf("node-2 needed no reboot")
	}
	if n0.Annotations[contract.AnnotationLastReboot] == "" {
		t.Errorf("no %s on node-0", contract.AnnotationLastReboot)
	}
}
