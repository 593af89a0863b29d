package controller_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// The release gate holds the slot of a rebooted node until it is healthy:
// node-0's DaemonSet pod stays unready after its reboot, so node-0 waits
// (WaitingForRelease naming the pod) and, after --release-timeout, is
// Failed with the slot kept: the independent watcher never sees node-1
// taken while node-0 is out. An operator clears node-0; node-1 goes, and
// its release waits for a release condition and the absence of a release
// taint, and completes once the test sets the one and removes the other.
func TestReleaseGate(t *testing.T) {
	e := setup(t, 2, 4*time.Minute)
	const netReady = "example.com/NetworkReady"
	e.setNodeCondition("node-0", netReady, corev1.ConditionTrue)
	e.setNodeCondition("node-1", netReady, corev1.ConditionFalse)
	e.taint("node-1", "readiness.k8s.io/network", true)
	e.deployDaemonSet("agent", 2)
	agent0 := e.daemonSetPodOn("agent", "node-0")
	// The kubelet would write this after the reboot; kwok sets Ready only
	// on Pending pods, so the pod stays unready.
	e.setPodReady(agent0, corev1.ConditionFalse)

	for i := range 2 {
		e.startHost(nodeName(i), true)
	}
	e.startController("controller-0", "--release-timeout=20s", "--release-conditions="+netReady+"=True")
	if err := e.sims["node-0"].CreateSentinel(); err != nil {
		t.Fatal(err)
	}
	e.waitNode("node-0", func(n *corev1.Node) bool { return n.Annotations[contract.AnnotationState] != "" }, "taken")
	if err := e.sims["node-1"].CreateSentinel(); err != nil {
		t.Fatal(err)
	}
	e.waitEvent("node-1", contract.ReasonRebootQueued)

	waiting := e.waitEventSaying("node-0", contract.ReasonWaitingForRelease, workNS+"/"+agent0.Name)
	if waiting.Type != corev1.EventTypeNormal {
		t.Errorf("%s is a %s event", waiting.Reason, waiting.Type)
	}
	t.Logf("waiting: %s", waiting.Message)
	failed := e.waitNode("node-0", inState(contract.StateFailed), "Failed after --release-timeout")
	if r := failed.Annotations[contract.AnnotationStateReason]; r != contract.ReasonReleaseTimeout {
		t.Errorf("state-reason %q, want %s", r, contract.ReasonReleaseTimeout)
	}
	if !failed.Spec.Unschedulable {
		t.Error("the Failed node was uncordoned")
	}
	timeout := e.waitEventSaying("node-0", contract.ReasonReleaseTimeout, workNS+"/"+agent0.Name)
	if timeout.Type != corev1.EventTypeWarning {
		t.Errorf("%s is a %s event", timeout.Reason, timeout.Type)
	}
	if len(e.rebootsOf("node-0")) != 1 {
		t.Error("node-0 did not reboot exactly once")
	}
	if n := e.out.Takes("node-1"); n != 0 {
		t.Fatalf("node-1 taken %d times while node-0 held its slot", n)
	}

	// The operator looks, and clears node-0: its slot goes to node-1.
	if out, err := e.c.Kubectl(e.ctx, "annotate", "node", "node-0", contract.AnnotationState+"-"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	held := e.waitEventSaying("node-1", contract.ReasonWaitingForRelease, "taint readiness.k8s.io/network present")
	if !strings.Contains(held.Message, "condition "+netReady+" is False (want True)") || strings.Contains(held.Message, "DaemonSet") {
		t.Errorf("node-1 waits for %q; want the condition and the taint, not its Ready DaemonSet pod", held.Message)
	}
	e.taint("node-1", "readiness.k8s.io/network", false)
	e.setNodeCondition("node-1", netReady, corev1.ConditionTrue)
	e.waitNode("node-1", rebootDone, "released once healthy")
	if m := e.out.Max(); m != 1 {
		t.Errorf("%d nodes out at once, want 1", m)
	}
}

// setNodeCondition writes a node condition as its owner would.
func (e *env) setNodeCondition(node, typ string, status corev1.ConditionStatus) {
	e.t.Helper()
	now := time.Now().UTC().Format(time.RFC3339)
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":%q,"reason":"Test","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`,
		typ, status, now, now)
	if _, err := e.c.Client.CoreV1().Nodes().Patch(e.ctx, node, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		e.t.Fatal(err)
	}
}

// taint adds (or removes) a NoSchedule taint with the key.
func (e *env) taint(node, key string, add bool) {
	e.t.Helper()
	arg := key + ":NoSchedule"
	if !add {
		arg += "-"
	}
	if out, err := e.c.Kubectl(e.ctx, "taint", "node", node, arg); err != nil {
		e.t.Fatalf("taint %s %s: %v: %s", node, arg, err, out)
	}
}

// deployDaemonSet creates a DaemonSet on the kwok nodes that tolerates
// every taint, and waits until its pods are Ready on ready nodes.
func (e *env) deployDaemonSet(name string, ready int32) {
	e.t.Helper()
	if _, err := e.c.Client.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: workNS}}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	labels := map[string]string{"app": name}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: workNS},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:   []corev1.Container{{Name: name, Image: "registry.k8s.io/pause:3.10"}},
					NodeSelector: map[string]string{"type": "kwok"},
					Tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				},
			},
		},
	}
	if _, err := e.c.Client.AppsV1().DaemonSets(workNS).Create(e.ctx, ds, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	lw := framework.ConsistentListWatch(e.c.Client.AppsV1().RESTClient(), "daemonsets", workNS, fields.OneTermEqualSelector("metadata.name", name))
	if _, err := watchtools.UntilWithSync(e.ctx, lw, &appsv1.DaemonSet{}, nil, func(ev watch.Event) (bool, error) {
		d, ok := ev.Object.(*appsv1.DaemonSet)
		return ok && d.Status.NumberReady == ready, nil
	}); err != nil {
		e.t.Fatalf("DaemonSet %s not Ready on %d nodes: %v", name, ready, err)
	}
}

// daemonSetPodOn returns the DaemonSet's pod on the node.
func (e *env) daemonSetPodOn(name, node string) *corev1.Pod {
	e.t.Helper()
	list, err := e.c.Client.CoreV1().Pods(workNS).List(e.ctx, metav1.ListOptions{
		LabelSelector: "app=" + name, FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil || len(list.Items) != 1 {
		e.t.Fatalf("pods of %s on %s: %v, %v", name, node, list, err)
	}
	return &list.Items[0]
}

// setPodReady writes the pod's Ready condition, as its kubelet would.
func (e *env) setPodReady(p *corev1.Pod, status corev1.ConditionStatus) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":%q,"reason":"Test"}]}}`, status)
	if _, err := e.c.Client.CoreV1().Pods(p.Namespace).Patch(e.ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		e.t.Fatal(err)
	}
}
