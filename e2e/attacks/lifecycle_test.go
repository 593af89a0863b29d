package attacks

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// The lifecycle conditions of KEP-5683 the controller writes
// (docs/controller.md), spelled out as an attacker reads them.
var lifecycleConditions = []string{"MaintenancePlanned", "DrainInProgress", "Drained", "MaintenanceInProgress"}

// ourMessage starts the message of the controller's lifecycle conditions.
const ourMessage = "nodereboot-controller: "

// conditionsPatch is a strategic-merge patch of nodes/status setting each
// condition type to status with the message.
func conditionsPatch(status, message string, types ...string) []byte {
	now := time.Now().UTC().Format(time.RFC3339)
	var cs []map[string]string
	for _, t := range types {
		cs = append(cs, map[string]string{"type": t, "status": status, "reason": "E2E", "message": message,
			"lastHeartbeatTime": now, "lastTransitionTime": now})
	}
	b, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": cs}})
	return b
}

// testLifecycleConditions: the controller's service account may write the
// four lifecycle conditions and nothing else in a Node's status (policy
// nodereboot-controller-status), not even with them in the same patch; a
// service account with patch on nodes/status may write them too (KEP-5683:
// any authorized actor), which is harmless because the controller acts on
// none of them (TestRolloutThroughThePolicies).
func testLifecycleConditions(ctx context.Context, t *testing.T, in *Install, ctl, patcher kubernetes.Interface) {
	const (
		whoCtl     = "the controller's service account"
		whoPatcher = "service account with `patch` on nodes/status"
		denied     = "may change nothing in the status"
	)
	victim, other := in.Nodes[1], in.Nodes[2]
	all := append([]string(nil), lifecycleConditions...)
	for _, w := range []write{
		{attack: "the four lifecycle conditions True", who: whoCtl, cs: ctl, node: other, smp: true, body: conditionsPatch("True", ourMessage+"e2e", all...)},
		{attack: "the four lifecycle conditions False", who: whoCtl, cs: ctl, node: other, smp: true, body: conditionsPatch("False", ourMessage+"e2e", all...)},
		{attack: "Ready=False (mark the node NotReady)", who: whoCtl, cs: ctl, node: other, smp: true, body: conditionsPatch("False", "e2e", "Ready"),
			want: ControllerStatusPolicy, wantMsg: denied},
		{attack: "RebootRequired=True (a reboot nobody asked for)", who: whoCtl, cs: ctl, node: other, smp: true, body: conditionsPatch("True", "e2e", "RebootRequired"),
			want: ControllerStatusPolicy, wantMsg: denied},
		{attack: "Drained=True together with Ready=False", who: whoCtl, cs: ctl, node: other, smp: true, body: conditionsPatch("True", ourMessage+"e2e", "Drained", "Ready"),
			want: ControllerStatusPolicy, wantMsg: denied},
		{attack: "status.nodeInfo.bootID (a reboot seen that never was)", who: whoCtl, cs: ctl, node: other,
			body: []byte(`{"status":{"nodeInfo":{"bootID":"` + FakeBootID + `"}}}`), want: ControllerStatusPolicy, wantMsg: denied},
		{attack: "status.addresses", who: whoCtl, cs: ctl, node: other,
			body: []byte(`{"status":{"addresses":[{"type":"InternalIP","address":"10.9.9.9"}]}}`), want: ControllerStatusPolicy, wantMsg: denied},
		{attack: "the four lifecycle conditions True, its own message", who: whoPatcher, cs: patcher, node: victim, smp: true, body: conditionsPatch("True", "forged", all...)},
		{attack: "the four lifecycle conditions True, the controller's message", who: whoPatcher, cs: patcher, node: victim, smp: true, body: conditionsPatch("True", ourMessage+"forged", all...)},
	} {
		w.status = true
		in.try(ctx, t, w)
	}
}

// testControllerLosesStatusPermission: without `patch nodes/status` in its
// ClusterRole the controller cannot write the lifecycle conditions (the one
// thing that rule is for).
func testControllerLosesStatusPermission(ctx context.Context, t *testing.T, in *Install, ctl kubernetes.Interface) {
	last := withoutControllerRule(ctx, t, in, func(r rbacv1.PolicyRule) bool { return len(r.Resources) == 1 && r.Resources[0] == "nodes/status" },
		func() error {
			_, err := ctl.CoreV1().Nodes().Patch(ctx, in.Nodes[2], types.StrategicMergePatchType,
				conditionsPatch("True", ourMessage+"e2e", "MaintenancePlanned"),
				metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}, "status")
			return err
		})
	in.check(t, "MaintenancePlanned (dry run) after `patch nodes/status` was removed from its ClusterRole", "the controller's service account",
		last, rbacRefusal, `cannot patch resource "nodes/status"`)
}

// lifecycleOver: the node shows the four lifecycle conditions False, written
// by the controller.
func lifecycleOver(n *corev1.Node) bool {
	for _, ty := range lifecycleConditions {
		c := condition(n, ty)
		if c == nil || c.Status != corev1.ConditionFalse || !strings.HasPrefix(c.Message, ourMessage) {
			return false
		}
	}
	return true
}

func condition(n *corev1.Node, ty string) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if string(n.Status.Conditions[i].Type) == ty {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// forgedLifecycleConditions: a service account with patch on nodes/status
// writes MaintenanceInProgress and DrainInProgress True on an idle node
// (its own message), then Drained True with the controller's message. The
// running controller takes nothing for it: once it has set the Drained it
// believes its own False again (so it decided on a version with all three
// forged),
// the node is still idle and uncordoned, the other two are untouched, and
// no node went out.
func forgedLifecycleConditions(ctx context.Context, t *testing.T, in *Install, w *nodeWatch) {
	patcher := in.Client(t, in.PatcherConfig(ctx, t))
	node := in.Nodes[0]
	const who = "service account with `patch` on nodes/status, the controller running"
	in.try(ctx, t, write{attack: "MaintenanceInProgress, DrainInProgress True on an idle node (own message)", who: who, cs: patcher, node: node,
		status: true, smp: true, body: conditionsPatch("True", "forged", "MaintenanceInProgress", "DrainInProgress")})
	in.try(ctx, t, write{attack: "then Drained True (the controller's message)", who: who, cs: patcher, node: node,
		status: true, smp: true, body: conditionsPatch("True", ourMessage+"forged", "Drained")})
	n, err := in.Cluster.WaitForNode(ctx, node, func(n *corev1.Node) bool {
		c := condition(n, "Drained")
		return c != nil && c.Status == corev1.ConditionFalse
	})
	if err != nil {
		t.Fatalf("the controller did not set its forged Drained False: %v", err)
	}
	var acted []string
	if _, out := n.Annotations[annState]; out || n.Spec.Unschedulable {
		acted = append(acted, "node taken")
	}
	for _, ty := range []string{"MaintenanceInProgress", "DrainInProgress"} {
		if c := condition(n, ty); c == nil || c.Status != corev1.ConditionTrue || c.Message != "forged" {
			acted = append(acted, ty+" changed")
		}
	}
	if maxOut, _ := w.verdict(); maxOut > 1 {
		acted = append(acted, "more than one node out")
	}
	if len(acted) > 0 {
		t.Errorf("forged lifecycle conditions on %s: %v", node, acted)
	}
	in.Record(Outcome{Attack: "(check) the controller after the forged lifecycle conditions", Who: "observer (admin GET, node watch)",
		Server: "forged Drained set False; others' conditions untouched",
		Result: map[bool]string{true: "acted on nothing", false: "FAILED: " + strings.Join(acted, ", ")}[len(acted) == 0]})
}
