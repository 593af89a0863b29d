package controller_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/nodereboot/nodereboot/e2e/nodesim"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// The kubelet's Rebooted event is held against the reboots the controller
// sees by boot ID. kwok records none, so the test records it as the kubelet
// would, at node-0's boot: that reboot has both witnesses and is not
// counted. node-1 reboots without one (kubelet_event_missing), and an event
// naming a boot nobody saw counts as unexpected_reboot. Least privilege:
// without list and watch on events, the next controller sees no kubelet
// event — node-0's next reboot counts as kubelet_event_missing, and an
// event naming an unseen boot is not counted.
func TestRebootWitnesses(t *testing.T) {
	e := setup(t, 2, 3*time.Minute)
	for i := range 2 {
		e.startHost(nodeName(i), true)
	}
	e.sims["node-0"].SetBootHook(func(n *nodesim.Node) error {
		b, err := os.ReadFile(n.BootIDFile())
		if err != nil {
			return err
		}
		return e.kubeletRebooted("node-0", strings.TrimSpace(string(b)))
	})
	args := []string{"--testing-witness-grace=3s", "--min-reboot-interval=0s"}
	c := e.startController("controller-0", args...)
	for _, n := range []string{"node-0", "node-1"} {
		if err := e.sims[n].CreateSentinel(); err != nil {
			t.Fatal(err)
		}
		e.waitNode(n, rebootDone, "rebooted")
	}
	if err := e.kubeletRebooted("node-1", "a-boot-nobody-saw"); err != nil {
		t.Fatal(err)
	}
	// The grace timers fire in the order they were started: once the last
	// one has counted, the others have.
	unexpected := `nodereboot_reboot_witness_mismatch_total{witness="unexpected_reboot"}`
	if err := wait.PollUntilContextCancel(e.ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		v, err := c.metric(unexpected)
		return err == nil && v >= 1, nil
	}); err != nil {
		t.Fatalf("%s never counted: %v", unexpected, err)
	}
	missing := `nodereboot_reboot_witness_mismatch_total{witness="kubelet_event_missing"}`
	for sample, want := range map[string]float64{unexpected: 1, missing: 1} {
		if v, err := c.metric(sample); err != nil || v != want {
			t.Errorf("%s = %v (%v), want %v", sample, v, err, want)
		}
	}

	// Without list and watch on events.
	c.Stop(15 * time.Second)
	role, err := e.c.Client.RbacV1().ClusterRoles().Get(e.ctx, "nodereboot-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range role.Rules {
		if len(r.Resources) == 1 && r.Resources[0] == "events" {
			role.Rules[i].Verbs = []string{"create", "patch"}
		}
	}
	if _, err := e.c.Client.RbacV1().ClusterRoles().Update(e.ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c = e.startController("controller-1", args...)
	if err := e.kubeletRebooted("node-1", "another-boot-nobody-saw"); err != nil {
		t.Fatal(err)
	}
	before := e.waitNode("node-0", rebootDone, "idle").Annotations[contract.AnnotationLastReboot]
	if err := e.sims["node-0"].CreateSentinel(); err != nil {
		t.Fatal(err)
	}
	e.waitNode("node-0", func(n *corev1.Node) bool {
		return rebootDone(n) && n.Annotations[contract.AnnotationLastReboot] != before
	}, "rebooted again")
	if err := wait.PollUntilContextCancel(e.ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		v, err := c.metric(missing)
		return err == nil && v >= 1, nil
	}); err != nil {
		t.Fatalf("%s never counted without the right to watch events: %v", missing, err)
	}
	if v, err := c.metric(unexpected); err != nil || v != 0 {
		t.Errorf("%s = %v (%v) without the right to watch events, want 0", unexpected, v, err)
	}
}

// kubeletRebooted records the kubelet's Rebooted event for a node's boot,
// as the kubelet words it.
func (e *env) kubeletRebooted(node, boot string) error {
	now := metav1.Now()
	_, err := e.c.Client.CoreV1().Events(metav1.NamespaceDefault).Create(e.ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: node + ".", Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: node, UID: "node-uid"},
		Reason:         contract.ReasonRebooted, Type: corev1.EventTypeWarning,
		Message: "Node " + node + " has been rebooted, boot id: " + boot,
		Source:  corev1.EventSource{Component: "kubelet", Host: node}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
	return err
}
