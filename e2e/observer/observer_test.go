package observer

import (
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The checks on synthetic histories: each invariant is caught, and a clean
// pass through the pipeline raises nothing.

const (
	bootA = "aaaaaaaa-0000-0000-0000-000000000000"
	bootB = "bbbbbbbb-0000-0000-0000-000000000000"
	bootC = "cccccccc-0000-0000-0000-000000000000"
)

func testObserver(max int) *Observer {
	return &Observer{
		cfg: Config{MaxConcurrent: max}, changed: make(chan struct{}),
		nodes: map[string][]version{}, pods: map[types.UID]*pod{}, events: map[types.UID]event{},
		hosts: map[string]string{}, logSizes: map[string]int64{}, reboots: map[string][]Reboot{},
		checked: map[string]bool{}, out: map[string]bool{}, gap: map[string]bool{}, budgetMet: map[string]bool{}, poke: make(chan struct{}, 1),
	}
}

// nodeAt is a node version: rv, boot ID, cordon and annotations as k=v.
func nodeAt(name string, rv int, boot string, unschedulable bool, kv ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: strconv.Itoa(rv), Annotations: map[string]string{}}}
	n.Spec.Unschedulable = unschedulable
	n.Status.NodeInfo.BootID = boot
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		n.Annotations[k] = v
	}
	return n
}

// cleanPass feeds one node through the pipeline, rebooting from bootA to
// bootB, starting at rv.
func cleanPass(o *Observer, name string, rv int) {
	o.onNode(nodeAt(name, rv, bootA, false), false)
	o.onNode(nodeAt(name, rv+1, bootA, true, annState+"="+stateDraining, annCordonedByUs+"=true"), false)
	o.onNode(nodeAt(name, rv+3, bootA, true, annState+"="+stateAuthorized, annCordonedByUs+"=true", annAuthorized+"="+bootA), false)
	o.onNode(nodeAt(name, rv+4, bootA, true, annState+"="+stateAuthorized, annCordonedByUs+"=true", annAuthorized+"="+bootA, annRebooting+"="+bootA), false)
	o.onNode(nodeAt(name, rv+5, bootA, true, annState+"="+stateAuthorized, annCordonedByUs+"=true", annAuthorized+"="+bootA, annRebooting+"="+bootA, annPoweredOff+"=true"), false)
	o.onNode(nodeAt(name, rv+6, bootB, true, annState+"="+stateAuthorized, annCordonedByUs+"=true", annAuthorized+"="+bootA, annRebooting+"="+bootA), false)
	o.onNode(nodeAt(name, rv+7, bootB, true, annState+"="+stateRebooted, annCordonedByUs+"=true", annAuthorized+"="+bootA), false)
	o.onNode(nodeAt(name, rv+8, bootB, false), false)
	o.reboots[name] = append(o.reboots[name], Reboot{Node: name, OldBootID: bootA, NewBootID: bootB})
}

func invariants(o *Observer) string {
	var s []string
	for _, v := range o.violations {
		s = append(s, v.Invariant)
	}
	return strings.Join(s, ",")
}

func TestCleanPassHasNoViolation(t *testing.T) {
	o := testObserver(1)
	cleanPass(o, "n1", 10)
	o.pods["p"] = &pod{key: "ns/p", node: "n1", mustEvict: true, firstRV: 5, goneRV: 12}
	o.pods["ds"] = &pod{key: "ns/ds", node: "n1", mustEvict: false, firstRV: 5}
	o.checkOutReplay()
	o.checkReboots(true)
	o.checkDrained()
	o.checkDeclaredReboots()
	if got := invariants(o); got != "" {
		t.Fatalf("violations %s: %v", got, o.violations)
	}
}

func TestI1TooManyOut(t *testing.T) {
	o := testObserver(1)
	o.onNode(nodeAt("n1", 10, bootA, true, annState+"="+stateDraining), false)
	o.onNode(nodeAt("n2", 11, bootA, true, annCordonedByUs+"=true"), false)
	o.checkOutReplay()
	if got := invariants(o); got != "I1" || o.maxOut != 2 {
		t.Fatalf("violations %q, max out %d, want I1 and 2", got, o.maxOut)
	}
	// An invalid state of a user does not count; the controller's does.
	o = testObserver(1)
	o.onNode(nodeAt("n1", 10, bootA, false, annState+"=bogus"), false)
	o.onNode(nodeAt("n2", 11, bootA, true, annState+"="+stateFailed), false)
	o.checkOutReplay()
	if got := invariants(o); got != "" {
		t.Fatalf("violations %q, want none", got)
	}
}

// A relist delivers nodes in no particular order: n2 taken (rv 21) arrives
// before n1 given back (rv 20). In resource-version order they never
// overlap.
func TestI1RelistOrder(t *testing.T) {
	o := testObserver(1)
	o.onNode(nodeAt("n1", 10, bootA, true, annState+"="+stateDraining), false)
	o.onNode(nodeAt("n2", 11, bootA, false), false)
	o.gap["n1"], o.gap["n2"] = true, true
	o.onNode(nodeAt("n2", 21, bootA, true, annState+"="+stateDraining), false)
	o.onNode(nodeAt("n1", 20, bootA, false), false)
	o.checkOutReplay()
	if got := invariants(o); got != "" {
		t.Fatalf("violations %q, want none", got)
	}
}

// Across a gap of the watch, a node that was out before and not after may
// have left at any version in between: no overlap is claimed; one that was
// out on both sides was out throughout.
func TestI1AcrossAGap(t *testing.T) {
	// n1 out before and after the gap: out throughout; n2 out inside it.
	o := testObserver(1)
	o.onNode(nodeAt("n1", 10, bootA, true, annState+"="+stateDraining), false)
	o.onNode(nodeAt("n2", 15, bootA, true, annState+"="+stateDraining), false)
	o.onNode(nodeAt("n2", 16, bootA, false), false)
	o.gap["n1"] = true
	o.onNode(nodeAt("n1", 30, bootA, true, annState+"="+stateAuthorized), false)
	o.checkOutReplay()
	if got := invariants(o); got != "I1" {
		t.Fatalf("violations %q, want I1", got)
	}
	// n1 out before the gap only: it may have left at any version in it.
	o = testObserver(1)
	o.onNode(nodeAt("n1", 10, bootA, true, annState+"="+stateDraining), false)
	o.gap["n1"] = true
	o.onNode(nodeAt("n1", 30, bootA, false), false)
	o.onNode(nodeAt("n2", 25, bootA, true, annState+"="+stateDraining), false)
	o.checkOutReplay()
	if got := invariants(o); got != "" {
		t.Fatalf("violations %q, want none: n1 may have left before rv 25", got)
	}
}

func TestI2RebootWithoutAuthorization(t *testing.T) {
	o := testObserver(1)
	o.onNode(nodeAt("n1", 10, bootA, true, annState+"="+stateDraining), false)
	o.onNode(nodeAt("n1", 11, bootA, true, annState+"="+stateDraining, annPoweredOff+"=true"), false)
	o.onNode(nodeAt("n1", 12, bootB, true, annState+"="+stateDraining), false)
	o.reboots["n1"] = []Reboot{{Node: "n1", OldBootID: bootA, NewBootID: bootB}}
	o.checkReboots(true)
	if got := invariants(o); got != "I2" {
		t.Fatalf("violations %q, want I2", got)
	}
}

func TestI2RebootInsideAGap(t *testing.T) {
	// Authorized before the gap, back and out of the pipeline after it: the
	// reboot happened somewhere in the gap; nothing is claimed.
	o := testObserver(1)
	o.onNode(nodeAt("n1", 10, bootA, true, annState+"="+stateAuthorized, annCordonedByUs+"=true", annAuthorized+"="+bootA), false)
	o.onNode(nodeAt("n1", 11, bootA, true, annState+"="+stateAuthorized, annCordonedByUs+"=true", annAuthorized+"="+bootA, annRebooting+"="+bootA), false)
	o.gap["n1"] = true
	o.onNode(nodeAt("n1", 30, bootB, false), false)
	o.reboots["n1"] = []Reboot{{Node: "n1", OldBootID: bootA, NewBootID: bootB}}
	o.checkReboots(true)
	if got := invariants(o); got != "" {
		t.Fatalf("violations %q, want none: %v", got, o.violations)
	}
	if len(o.notes) == 0 {
		t.Fatal("no note about the unverified reboot")
	}
	// The same history without the gap: a reboot outside the pipeline.
	o = testObserver(1)
	o.onNode(nodeAt("n1", 10, bootA, true, annState+"="+stateAuthorized, annCordonedByUs+"=true", annAuthorized+"="+bootA), false)
	o.onNode(nodeAt("n1", 11, bootA, true, annState+"="+stateAuthorized, annCordonedByUs+"=true", annAuthorized+"="+bootA, annRebooting+"="+bootA), false)
	o.onNode(nodeAt("n1", 12, bootA, false), false)
	o.onNode(nodeAt("n1", 30, bootB, false), false)
	o.reboots["n1"] = []Reboot{{Node: "n1", OldBootID: bootA, NewBootID: bootB}}
	o.checkReboots(true)
	if got := invariants(o); got != "I2" {
		t.Fatalf("violations %q, want I2", got)
	}
}

func TestI2CommittedAfterTheAuthorizationWasWithdrawn(t *testing.T) {
	o := testObserver(1)
	o.onNode(nodeAt("n1", 10, bootA, true, annState+"="+stateAuthorized, annAuthorized+"="+bootA), false)
	o.onNode(nodeAt("n1", 11, bootA, true, annState+"="+stateFailed), false)
	o.onNode(nodeAt("n1", 12, bootA, true, annState+"="+stateFailed, annRebooting+"="+bootA), false)
	o.onNode(nodeAt("n1", 13, bootA, true, annState+"="+stateFailed, annRebooting+"="+bootA, annPoweredOff+"=true"), false)
	o.onNode(nodeAt("n1", 14, bootB, true, annState+"="+stateFailed), false)
	o.reboots["n1"] = []Reboot{{Node: "n1", OldBootID: bootA, NewBootID: bootB}}
	o.checkReboots(true)
	if got := invariants(o); !strings.Contains(got, "I2") {
		t.Fatalf("violations %q, want I2", got)
	}
}

func TestI2PodLeftAtTheAuthorization(t *testing.T) {
	o := testObserver(1)
	cleanPass(o, "n1", 10)
	o.pods["p"] = &pod{key: "ns/p", node: "n1", mustEvict: true, firstRV: 5, goneRV: 20} // gone after the authorization (rv 13)
	o.checkReboots(true)
	o.checkDrained()
	if got := invariants(o); got != "I2" {
		t.Fatalf("violations %q, want I2", got)
	}
	// With --on-drain-failure=reboot it is allowed.
	o = testObserver(1)
	o.cfg.ForceReboot = true
	cleanPass(o, "n1", 10)
	o.pods["p"] = &pod{key: "ns/p", node: "n1", mustEvict: true, firstRV: 5}
	o.checkReboots(true)
	o.checkDrained()
	if got := invariants(o); got != "" {
		t.Fatalf("violations %q with ForceReboot, want none", got)
	}
}

func TestI2TwoRebootsInOnePass(t *testing.T) {
	o := testObserver(1)
	cleanPass(o, "n1", 10)
	// Rewrite the end: instead of leaving the pipeline after the first
	// reboot, the node is authorized again and reboots a second time.
	h := o.nodes["n1"]
	o.nodes["n1"] = h[:len(h)-1]
	o.onNode(nodeAt("n1", 30, bootB, true, annState+"="+stateAuthorized, annAuthorized+"="+bootB), false)
	o.onNode(nodeAt("n1", 31, bootB, true, annState+"="+stateAuthorized, annAuthorized+"="+bootB, annRebooting+"="+bootB, annPoweredOff+"=true"), false)
	o.onNode(nodeAt("n1", 32, bootC, true, annState+"="+stateRebooted, annAuthorized+"="+bootB), false)
	o.onNode(nodeAt("n1", 33, bootC, false), false)
	o.reboots["n1"] = append(o.reboots["n1"], Reboot{Node: "n1", OldBootID: bootB, NewBootID: bootC})
	o.checkReboots(true)
	if got := invariants(o); got != "I2" {
		t.Fatalf("violations %q, want I2 (two reboots in one pass)", got)
	}
}

func TestI6RebootedWithoutAReboot(t *testing.T) {
	o := testObserver(1)
	o.onNode(nodeAt("n1", 10, bootA, true, annState+"="+stateAuthorized, annAuthorized+"="+bootC), false)
	o.onNode(nodeAt("n1", 11, bootA, true, annState+"="+stateRebooted, annAuthorized+"="+bootC), false)
	o.checkDeclaredReboots()
	if got := invariants(o); got != "I6" {
		t.Fatalf("violations %q, want I6", got)
	}
}

func TestMissingEvents(t *testing.T) {
	o := testObserver(1)
	cleanPass(o, "n1", 10)
	if m := o.missingEvents(); len(m) == 0 {
		t.Fatal("no missing events reported without any event")
	}
	add := func(component, reason, msg string) {
		o.events[types.UID(component+reason+msg)] = event{node: "n1", component: component, reason: reason, message: msg, count: 1}
	}
	for _, r := range []string{"Draining", "Cordoned", "RebootAuthorized", "Rebooted", "RebootCompleted", "Uncordoned"} {
		add(controllerComponent, r, "")
	}
	add(detectorComponent, "Rebooting", "Rebooting: ... boot ID "+bootA)
	if m := o.missingEvents(); len(m) != 0 {
		t.Fatalf("missing %v", m)
	}
	// A second, not resumed, reboot request for the same boot is I2.
	add(detectorComponent, "Rebooting", "Rebooting: again "+bootA)
	o.checkRebootRequests()
	if got := invariants(o); got != "I2" {
		t.Fatalf("violations %q, want I2", got)
	}
}

func TestI3BudgetBelowItsMinimum(t *testing.T) {
	o := testObserver(1)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo", Generation: 2}}
	// Created before its pods are ready: below its minimum, not a dip.
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 2, CurrentHealthy: 0, DesiredHealthy: 9}
	o.onPDB(pdb)
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 2, CurrentHealthy: 9, DesiredHealthy: 9}
	o.onPDB(pdb)
	pdb.Status.ObservedGeneration = 1 // a stale status says nothing
	pdb.Status.CurrentHealthy = 3
	o.onPDB(pdb)
	if len(o.budgetDips) != 0 {
		t.Fatalf("dips %v, want none", o.budgetDips)
	}
	pdb.Status.ObservedGeneration = 2
	pdb.Status.CurrentHealthy = 8
	o.onPDB(pdb)
	if len(o.budgetDips) != 1 {
		t.Fatalf("dips %v, want one", o.budgetDips)
	}
}

// withOwner marks who wrote the annotation key, as managedFields say.
func withOwner(n *corev1.Node, key, manager string) *corev1.Node {
	fields := `{"f:metadata":{"f:annotations":{"f:` + key + `":{}}}}`
	n.ManagedFields = append(n.ManagedFields, metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(fields)})
	recordOwners(n)
	return n
}

// States an attacker wrote on every node do not put the nodes out (I1):
// what counts is what the controller does about them.
func TestForgedStatesAreNotOut(t *testing.T) {
	o := testObserver(1)
	for i, name := range []string{"n1", "n2", "n3"} {
		o.onNode(nodeAt(name, 10+i, bootA, false), false)
		o.onNode(withOwner(nodeAt(name, 20+i, bootA, false, annState+"="+stateDraining), annState, "kubectl-annotate"), false)
		o.onNode(nodeAt(name, 30+i, bootA, false), false) // the controller's reset
	}
	o.checkOutReplay()
	if got := invariants(o); got != "" {
		t.Fatalf("violations %s: %v", got, o.violations)
	}
	if len(o.missingEvents()) != 0 {
		t.Fatalf("forged states call for events: %v", o.missingEvents())
	}
	// The same states written by the controller: I1.
	o = testObserver(1)
	for i, name := range []string{"n1", "n2"} {
		o.onNode(withOwner(nodeAt(name, 20+i, bootA, true, annState+"="+stateDraining), annState, controllerComponent), false)
	}
	o.checkOutReplay()
	if got := invariants(o); got != "I1" {
		t.Fatalf("violations %q, want I1", got)
	}
}

// A reboot committed on an authorization somebody else wrote is I2.
func TestRebootOnAForgedAuthorization(t *testing.T) {
	o := testObserver(1)
	o.onNode(nodeAt("n1", 10, bootA, false), false)
	o.onNode(nodeAt("n1", 11, bootA, true, annState+"="+stateDraining, annCordonedByUs+"=true"), false)
	forged := withOwner(nodeAt("n1", 12, bootA, true, annState+"="+stateAuthorized, annCordonedByUs+"=true", annAuthorized+"="+bootA), annAuthorized, "kubectl-annotate")
	o.onNode(forged, false)
	committed := withOwner(nodeAt("n1", 13, bootA, true, annState+"="+stateAuthorized, annCordonedByUs+"=true", annAuthorized+"="+bootA, annRebooting+"="+bootA), annAuthorized, "kubectl-annotate")
	o.onNode(committed, false)
	o.onNode(nodeAt("n1", 14, bootB, true, annState+"="+stateRebooted, annCordonedByUs+"=true", annAuthorized+"="+bootA), false)
	o.onNode(nodeAt("n1", 15, bootB, false), false)
	o.reboots["n1"] = append(o.reboots["n1"], Reboot{Node: "n1", OldBootID: bootA, NewBootID: bootB})
	o.checkReboots(true)
	if got := invariants(o); !strings.Contains(got, "I2") {
		t.Fatalf("violations %q, want I2", got)
	}
}
