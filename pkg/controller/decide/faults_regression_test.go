package decide

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// apply writes a decision's patch to a copy of the node, as the API server
// applies the merge patch.
func apply(n *v1.Node, p *Patch) *v1.Node {
	n = n.DeepCopy()
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	for k, v := range p.Annotations {
		if v == nil {
			delete(n.Annotations, k)
		} else {
			n.Annotations[k] = *v
		}
	}
	if p.Unschedulable != nil {
		n.Spec.Unschedulable = *p.Unschedulable
	}
	return n
}

// Regression test (found by the garbage-annotations fault, e2e/faults): a
// user overwrote reboot-authorized of an Authorized node with a wrong boot
// ID. The detector rightly refused it, but the controller took "the boot ID
// differs from the authorized one" for a completed reboot: it marked the node
// Rebooted, uncordoned it and recorded RebootCompleted although the node
// never rebooted. The authorized boot ID is recorded twice (the authorization
// and the state-reason); a changed authorization is restored, and only a
// real new boot completes the reboot.
func TestWrongBootIDInAuthorizationIsNoReboot(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	cfg := &Config{Conditions: []string{contract.DefaultConditionType}, MaxConcurrent: 1, DrainTimeout: 10 * time.Minute,
		OnDrainFailure: DrainFailureUncordon, RebootTimeout: 30 * time.Minute, MinRebootInterval: time.Hour}
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{}},
		Status: v1.NodeStatus{
			NodeInfo: v1.NodeSystemInfo{BootID: "11111111-1111-1111-1111-111111111111"},
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))},
				{Type: contract.DefaultConditionType, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))}},
		},
	}
	n = apply(n, TakePatch(n, t0, cfg))
	a := Node(held(Input{Node: n, Config: cfg, Now: t0.Add(time.Minute), Drain: &DrainStatus{}}))
	if a.Kind != Authorize {
		t.Fatalf("drained node: %v, want Authorize", a)
	}
	n = apply(n, a.Patch)

	// A user writes a wrong (but well-formed) boot ID.
	n.Annotations[contract.AnnotationRebootAuthorized] = "22222222-2222-2222-2222-222222222222"
	a = Node(held(Input{Node: n, Config: cfg, Now: t0.Add(2 * time.Minute)}))
	if a.Kind == MarkRebooted || a.Kind == Finish {
		t.Fatalf("wrong boot ID in the authorization: %v: a reboot that never happened", a)
	}
	if a.Kind != Reset || a.Patch.Annotations[contract.AnnotationRebootAuthorized] == nil ||
		*a.Patch.Annotations[contract.AnnotationRebootAuthorized] != "11111111-1111-1111-1111-111111111111" {
		t.Fatalf("wrong boot ID in the authorization: %v, want a Reset restoring the authorized boot ID", a)
	}
	n = apply(n, a.Patch)
	if a := Node(held(Input{Node: n, Config: cfg, Now: t0.Add(3 * time.Minute)})); a.Kind != Wait {
		t.Fatalf("restored, not rebooted yet: %v, want Wait", a)
	}
	// The real reboot.
	n.Status.NodeInfo.BootID = "33333333-3333-3333-3333-333333333333"
	if a := Node(held(Input{Node: n, Config: cfg, Now: t0.Add(4 * time.Minute)})); a.Kind != MarkRebooted {
		t.Fatalf("rebooted: %v, want MarkRebooted", a)
	}
	// An authorization without the second record (written by an older
	// controller) is trusted as before.
	delete(n.Annotations, contract.AnnotationStateReason)
	if a := Node(held(Input{Node: n, Config: cfg, Now: t0.Add(4 * time.Minute)})); a.Kind != MarkRebooted {
		t.Fatalf("rebooted, no second record: %v, want MarkRebooted", a)
	}
}

// Regression test (found by the controller-clock-5m-behind fault,
// e2e/faults): with the controller's clock behind the node's, a reboot
// condition's lastTransitionTime is in the controller's future, and with
// the default --condition-min-age=0 the node waited "until the condition is
// old enough" for as long as the clocks differ: the whole rollout stalled.
// Without a minimum age there is nothing to wait for.
func TestConditionFromTheFutureWithoutMinAge(t *testing.T) {
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	cfg := &Config{Conditions: []string{contract.DefaultConditionType}, MaxConcurrent: 1, DrainTimeout: 10 * time.Minute,
		OnDrainFailure: DrainFailureUncordon, RebootTimeout: 30 * time.Minute, MinRebootInterval: time.Hour}
	ahead := now.Add(5 * time.Minute) // the node's clock
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{}},
		Status: v1.NodeStatus{
			NodeInfo: v1.NodeSystemInfo{BootID: "11111111-1111-1111-1111-111111111111"},
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))},
				{Type: contract.DefaultConditionType, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(ahead), LastHeartbeatTime: metav1.NewTime(ahead)}},
		},
	}
	if a := Node(held(Input{Node: n, Config: cfg, Now: now})); a.Kind != Queue {
		t.Fatalf("condition True (written by a clock 5m ahead), no minimum age: %v, want Queue", a)
	}
	// With a minimum age the condition's own time is all there is: it
	// waits (the documented cost of a node clock ahead).
	cfg.ConditionMinAge = time.Minute
	if a := Node(held(Input{Node: n, Config: cfg, Now: now})); a.Kind != Wait || !a.Until.Equal(ahead.Add(time.Minute)) {
		t.Fatalf("with --condition-min-age: %v, want Wait until %v", a, ahead.Add(time.Minute))
	}
}

// TestReadyTransitionFromTheFutureDoesNotHoldTheSoak: found by
// controller-clock-5m-behind (I5, the rollout did not end). The node's
// Ready transition, written by a clock 5 minutes ahead of the controller's,
// was taken as a Ready flap after the reboot and restarted the soak from a
// moment in the controller's future: every rebooted node stayed cordoned
// for the skew.
func TestReadyTransitionFromTheFutureDoesNotHoldTheSoak(t *testing.T) {
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	ahead := 5 * time.Minute // the node's clock
	cfg := &Config{Conditions: []string{contract.DefaultConditionType}, MaxConcurrent: 1, DrainTimeout: 10 * time.Minute,
		OnDrainFailure: DrainFailureUncordon, RebootTimeout: 30 * time.Minute, MinRebootInterval: time.Hour}
	rebootedAt := now.Add(-time.Second) // the controller saw the new boot Ready
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{
			contract.AnnotationState:            string(contract.StateRebooted),
			contract.AnnotationStateSince:       contract.FormatTime(rebootedAt),
			contract.AnnotationCordonedByUs:     "true",
			contract.AnnotationRebootAuthorized: "11111111-1111-1111-1111-111111111111",
		}},
		Spec: v1.NodeSpec{Unschedulable: true},
		Status: v1.NodeStatus{
			NodeInfo: v1.NodeSystemInfo{BootID: "22222222-2222-2222-2222-222222222222"},
			// Ready again 2 s before the controller saw it, by the node's clock.
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue,
				LastTransitionTime: metav1.NewTime(rebootedAt.Add(ahead - 2*time.Second))}},
		},
	}
	if a := Node(held(Input{Node: n, Config: cfg, Now: now})); a.Kind != Finish {
		t.Fatalf("no soak, Ready since a node-clock time in the controller's future: %v, want Finish (uncordon)", a)
	}
	cfg.PostRebootSoak = 2 * time.Second
	if a := Node(held(Input{Node: n, Config: cfg, Now: now})); a.Kind != Wait || !a.Until.Equal(rebootedAt.Add(2*time.Second)) {
		t.Fatalf("2s soak: %v, want Wait until %v (the soak on the controller's clock)", a, rebootedAt.Add(2*time.Second))
	}
	// A flap the controller can place (clocks agree) still restarts it.
	n.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-500 * time.Millisecond))
	if a := Node(held(Input{Node: n, Config: cfg, Now: now})); a.Kind != Wait || !a.Until.Equal(now.Add(1500*time.Millisecond)) {
		t.Fatalf("flap after the reboot: %v, want Wait until %v", a, now.Add(1500*time.Millisecond))
	}
}
