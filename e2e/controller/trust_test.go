package controller_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/nodereboot/nodereboot/e2e/framework"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// TestForgedAnnotationsByANodeAgent plays the trust issue's attacks on the
// real API server with the rights many node agents have — patch on nodes,
// nothing else — on a cluster without the admission policy (as on clusters
// older than 1.30): what the controller and the detector do about it.
//
//   - state=Draining on every node: the controller resets it (Warning
//     InvalidAnnotation), evicts nothing, cordons nothing;
//   - reboot-authorized = a node's current boot ID: no reboot (the detector
//     wants the controller's whole authorization), the controller resets it;
//   - cordoned-by-us on a node an administrator cordoned: never uncordoned.
//
// Then a real rollout: each node rebooted exactly once, never more than
// --max-concurrent out.
func TestForgedAnnotationsByANodeAgent(t *testing.T) {
	e := setup(t, 3, 5*time.Minute)
	ctx, c := e.ctx, e.c
	agentKC := nodePatcher(t, e)
	e.deployWorkload("web", 6, nil, maxUnavailable(1))
	before := map[string][]string{}
	for i := range 3 {
		e.startHost(nodeName(i), true)
		before[nodeName(i)] = e.podsOn(nodeName(i))
	}
	if out, err := c.Kubectl(ctx, "cordon", "node-2"); err != nil {
		t.Fatalf("admin cordon: %v: %s", err, out)
	}
	e.startController("controller-0", "--max-concurrent=1")
	// The install runs (its slot record exists) when the agent attacks.
	e.waitSlotRecord()

	// The attacks, as the node agent.
	boot1 := e.sims["node-1"].BootID()
	for _, args := range [][]string{
		{"annotate", "nodes", "--all", "--overwrite", contract.AnnotationState + "=Draining"},
		{"annotate", "node", "node-1", "--overwrite", contract.AnnotationRebootAuthorized + "=" + boot1},
		{"annotate", "node", "node-2", "--overwrite", contract.AnnotationCordonedByUs + "=true"},
	} {
		if out, err := c.KubectlAs(ctx, agentKC, args...); err != nil {
			t.Fatalf("the node agent's %v was refused (it has patch on nodes): %v\n%s", args, err, out)
		}
	}
	clean := func(n *corev1.Node) bool {
		for _, k := range []string{contract.AnnotationState, contract.AnnotationRebootAuthorized, contract.AnnotationCordonedByUs} {
			if _, ok := n.Annotations[k]; ok {
				return false
			}
		}
		return true
	}
	for i := range 3 {
		e.waitNode(nodeName(i), clean, "forged annotations removed")
		ev := e.waitEventSaying(nodeName(i), contract.ReasonInvalidAnnotation, "holds no slot")
		if ev.Type != corev1.EventTypeWarning || ev.Source.Component != contract.ControllerComponent {
			t.Errorf("%s: %s %s from %s: %s, want the controller's Warning", nodeName(i), ev.Type, ev.Reason, ev.Source.Component, ev.Message)
		}
	}
	for i := range 3 {
		name := nodeName(i)
		n, _ := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if want := name == "node-2"; n.Spec.Unschedulable != want {
			t.Errorf("%s: unschedulable %v after the attacks, want %v", name, n.Spec.Unschedulable, want)
		}
		after := e.podsOn(name)
		for _, p := range before[name] {
			if !contains(after, p) {
				t.Errorf("pod %s was evicted from %s for a forged state", p, name)
			}
		}
	}

	// Now the OS asks for the reboots: the rollout the controller runs.
	out := watchOut(t, ctx, c)
	for i := range 3 {
		if err := e.sims[nodeName(i)].CreateSentinel(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		e.waitNode(nodeName(i), rebootDone, "reboot completed")
	}
	if m := out.Max(); m > 1 {
		t.Errorf("%d nodes out at once, want at most 1", m)
	}
	for i := range 3 {
		// One reboot each: the forged authorization rebooted nothing.
		if r := e.rebootsOf(nodeName(i)); len(r) != 1 {
			t.Errorf("%s rebooted %d times, want 1 (the controller's)", nodeName(i), len(r))
		}
	}
	if n, _ := c.Client.CoreV1().Nodes().Get(ctx, "node-2", metav1.GetOptions{}); !n.Spec.Unschedulable {
		t.Error("node-2, cordoned by an administrator, was uncordoned")
	}
}

// waitSlotRecord waits until the controller has started its term on the
// slot record.
func (e *env) waitSlotRecord() {
	e.t.Helper()
	sel := fields.OneTermEqualSelector("metadata.name", contract.SlotsConfigMapName)
	lw := framework.ConsistentListWatch(e.c.Client.CoreV1().RESTClient(), "configmaps", systemNS, sel)
	_, err := watchtools.UntilWithSync(e.ctx, lw, &corev1.ConfigMap{}, nil, func(ev watch.Event) (bool, error) {
		cm, ok := ev.Object.(*corev1.ConfigMap)
		return ok && cm.Annotations[contract.AnnotationTerm] != "" && cm.Annotations[contract.AnnotationTerm] != "0", nil
	})
	if err != nil {
		e.t.Fatalf("no slot record: %v", err)
	}
}

// waitEventSaying waits for an event of the node with the reason whose
// message contains words.
func (e *env) waitEventSaying(node, reason, words string) *corev1.Event {
	e.t.Helper()
	sel := fields.Set{"involvedObject.kind": "Node", "involvedObject.name": node, "reason": reason}.AsSelector()
	lw := framework.ConsistentListWatch(e.c.Client.CoreV1().RESTClient(), "events", metav1.NamespaceDefault, sel)
	ev, err := watchtools.UntilWithSync(e.ctx, lw, &corev1.Event{}, nil, func(ev watch.Event) (bool, error) {
		got, ok := ev.Object.(*corev1.Event)
		return ok && (ev.Type == watch.Added || ev.Type == watch.Modified) && strings.Contains(got.Message, words), nil
	})
	if err != nil {
		e.t.Fatalf("no %s event saying %q on %s: %v", reason, words, node, err)
	}
	return ev.Object.(*corev1.Event)
}

// nodePatcher makes a service account with only get and patch on nodes (a
// CNI, CSI or GPU agent's rights) and returns its kubeconfig.
func nodePatcher(t *testing.T, e *env) string {
	t.Helper()
	ctx, c := e.ctx, e.c
	kc, _, err := c.ServiceAccountKubeconfig(ctx, "agents", "node-agent")
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "node-agent"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "patch"}}}}
	if _, err := c.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "node-agent"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "node-agent"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "agents", Name: "node-agent"}}}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return kc
}
