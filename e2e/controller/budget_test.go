package controller_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/plugin"
)

// A refused eviction is retried when the budget allows it (its status
// change), not after --eviction-retry-delay: with the fallback at 10
// minutes, a drain refused by a budget ends within this test's 3-minute
// deadline once the budget is relaxed, and the refusals cost a few
// attempts, not a loop.
func TestRefusedEvictionRetriedOnTheBudget(t *testing.T) {
	e := setup(t, 2, 3*time.Minute)
	// Two pods per node, a budget that allows no disruption at all.
	e.deployWorkload("web", 4, nil, minAvailable(4))
	for i := range 2 {
		e.startHost(nodeName(i), true)
	}
	c := e.startController("controller-0", "--eviction-retry-delay=10m")
	if err := e.sims["node-0"].CreateSentinel(); err != nil {
		t.Fatal(err)
	}
	blocked := e.waitEvent("node-0", contract.ReasonEvictionBlocked)
	t.Logf("refused: %s", blocked.Message)
	// Both of node-0's pods refused before the budget changes (the drain
	// evicts them one after the other: a change made between the two
	// would let the second through at its first attempt).
	pods, err := e.c.Client.CoreV1().Pods(workNS).List(e.ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		e.waitEventSaying("node-0", contract.ReasonEvictionBlocked, p.Name)
	}
	// The budget now allows one disruption at a time: the disruption
	// controller's status update is the only signal the drain gets before
	// its 10-minute fallback.
	patch := []byte(`{"spec":{"minAvailable":null,"maxUnavailable":1}}`)
	if _, err := e.c.Client.PolicyV1().PodDisruptionBudgets(workNS).Patch(e.ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitNode("node-0", rebootDone, "reboot completed long before the 10-minute fallback")
	refused, err := c.metric(`nodereboot_evictions_total{result="blocked"}`)
	if err != nil {
		t.Fatal(err)
	}
	evicted, err := c.metric(`nodereboot_evictions_total{result="evicted"}`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("evictions: %v accepted, %v refused", evicted, refused)
	if refused < 2 || evicted < 2 {
		t.Errorf("evictions: %v accepted, %v refused; want both pods refused, then evicted", evicted, refused)
	}
	// One attempt per change of the budget's status: a handful, not a loop.
	if refused > 12 {
		t.Errorf("%v refused attempts for two pods: a hot loop", refused)
	}
	e.waitAvailable("web", 4)
}

// An unready pod whose budget keeps the default unhealthyPodEvictionPolicy
// (IfHealthyBudget) cannot be evicted while the budget is unhealthy: the
// EvictionBlocked event says so and names the fix; with the fix applied
// the drain ends. The evicted pod carries the API server's DisruptionTarget
// condition (reason EvictionByEvictionAPI), which the plugin's status
// counts.
func TestEvictionBlockedNamesUnhealthyPodPolicy(t *testing.T) {
	e := setup(t, 2, 3*time.Minute)
	e.deployWorkload("web", 2, nil, minAvailable(2))
	on0 := e.podsOn("node-0")
	if len(on0) != 1 {
		t.Fatalf("pods on node-0: %v, want one", on0)
	}
	p, err := e.c.Client.CoreV1().Pods(workNS).Get(e.ctx, on0[0], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.setPodReady(p, corev1.ConditionFalse)
	seen := e.watchEvicted()
	for i := range 2 {
		e.startHost(nodeName(i), true)
	}
	e.startController("controller-0")
	if err := e.sims["node-0"].CreateSentinel(); err != nil {
		t.Fatal(err)
	}
	blocked := e.waitEventSaying("node-0", contract.ReasonEvictionBlocked, "unhealthyPodEvictionPolicy: AlwaysAllow")
	if !strings.Contains(blocked.Message, workNS+"/"+p.Name) || !strings.Contains(blocked.Message, "not Ready") {
		t.Errorf("EvictionBlocked %q: want the pod, not Ready", blocked.Message)
	}
	t.Logf("refused: %s", blocked.Message)
	patch := []byte(`{"spec":{"unhealthyPodEvictionPolicy":"AlwaysAllow"}}`)
	if _, err := e.c.Client.PolicyV1().PodDisruptionBudgets(workNS).Patch(e.ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitNode("node-0", rebootDone, "drained once the budget lets unready pods go")
	if !seen(p.Name) {
		t.Errorf("pod %s was never seen with DisruptionTarget=True (EvictionByEvictionAPI)", p.Name)
	}
}

// watchEvicted watches the workload's pods and reports whether a pod was
// seen evicted (plugin.Evicted).
func (e *env) watchEvicted() func(name string) bool {
	e.t.Helper()
	var mu sync.Mutex
	evicted := map[string]bool{}
	lw := framework.ConsistentListWatch(e.c.Client.CoreV1().RESTClient(), "pods", workNS, fields.Everything())
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, obj any) {
		if p, ok := obj.(*corev1.Pod); ok && plugin.Evicted(p) {
			mu.Lock()
			evicted[p.Name] = true
			mu.Unlock()
		}
	}})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { defer close(done); inf.RunWithContext(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		e.t.Fatal("pod watch not synced")
	}
	return func(name string) bool {
		mu.Lock()
		defer mu.Unlock()
		return evicted[name]
	}
}
