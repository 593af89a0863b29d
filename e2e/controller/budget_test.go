package controller_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodereboot/nodereboot/pkg/contract"
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
