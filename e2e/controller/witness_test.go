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
// naming a boot nobody saw counts as unexpected_reboot.
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
	c := e.startController("controller-0", "--testing-witness-grace=3s")
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
	for sample, want := range map[string]float64{
		unexpected: 1,
		`nodereboot_reboot_witness_mismatch_total{witness="kubelet_event_missing"}`: 1,
	} {
		if v, err := c.metric(sample); err != nil || v != want {
			t.Errorf("%s = %v (%v), want %v", sample, v, err, want)
		}
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
