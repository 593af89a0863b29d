package nodesim_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/nodesim"
)

func condition(n *corev1.Node, typ corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == typ {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// kwok must leave alone the conditions that others own, also when its
// node-initialize stage rewrites the node's status. (It may rewrite
// status.nodeInfo.bootID from a stale copy of the node, seen here right after
// a node's creation: that is why the simulator changes the boot ID only while
// the node is powered off, when kwok does not manage it; TestSimulatedReboot
// checks the boot ID that results.)
func TestKwokKeepsForeignConditions(t *testing.T) {
	c := framework.StartCluster(t, framework.Options{Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	patch := []byte(`{"status":{"conditions":[
		{"type":"RebootRequired","status":"True","reason":"SentinelPresent","message":"test","lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"},
		{"type":"Ready","status":"False","reason":"Test","message":"make kwok initialize the node again","lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`)
	if _, err := c.Client.CoreV1().Nodes().Patch(ctx, "node-0", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	// kwok's node-initialize stage rewrites the status when Ready is not True.
	n, err := c.WaitForNode(ctx, "node-0", framework.NodeReady)
	if err != nil {
		t.Fatal(err)
	}
	if rr := condition(n, "RebootRequired"); rr == nil || rr.Status != corev1.ConditionTrue || rr.Reason != "SentinelPresent" {
		t.Errorf("kwok changed the foreign condition: %+v", rr)
	}
}

func TestSimulatedReboot(t *testing.T) {
	c := framework.StartCluster(t, framework.Options{Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The agent is a stand-in process; the simulator restarts it at boot.
	sim := nodesim.Start(t, c, nodesim.Config{
		NodeName:    "node-0",
		RebootDelay: 500 * time.Millisecond,
		Agent: func(n *nodesim.Node) (string, []string) {
			return "/bin/sleep", []string{"600"}
		},
	})
	agentBefore := sim.Agent().Pid()
	before := sim.BootID()
	if before == "" {
		t.Fatal("no boot ID")
	}
	if err := sim.CreateSentinel(); err != nil {
		t.Fatal(err)
	}

	// Watch the node from now on, to see it go NotReady and come back.
	lw := framework.ConsistentListWatch(c.Client.CoreV1().RESTClient(), "nodes", "", fields.OneTermEqualSelector("metadata.name", "node-0"))
	sawNotReady := make(chan struct{})
	go func() {
		_, _ = watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, nil, func(e watch.Event) (bool, error) {
			if n, ok := e.Object.(*corev1.Node); ok && !framework.NodeReady(n) {
				close(sawNotReady)
				return true, nil
			}
			return false, nil
		})
	}()

	cmd := exec.Command("/bin/sh", "-c", sim.RebootCommand())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reboot command: %v: %s", err, out)
	}
	reboots, err := sim.WaitForReboots(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sawNotReady:
	case <-ctx.Done():
		t.Fatal("the node never went NotReady during the reboot")
	}
	r := reboots[0]
	if r.OldBootID != before || r.NewBootID == before || r.NewBootID != sim.BootID() {
		t.Errorf("reboot %+v, boot ID before %s, now %s", r, before, sim.BootID())
	}
	_, err = c.WaitForNode(ctx, "node-0", func(n *corev1.Node) bool {
		return framework.NodeReady(n) && n.Status.NodeInfo.BootID == r.NewBootID && n.Annotations[nodesim.PoweredOffAnnotation] == ""
	})
	if err != nil {
		t.Fatalf("node not back with the new boot ID: %v", err)
	}
	if b, _ := os.ReadFile(sim.BootIDFile()); string(b) != r.NewBootID+"\n" {
		t.Errorf("boot_id file %q, want %q", b, r.NewBootID)
	}
	if _, err := os.Stat(sim.SentinelPath()); !os.IsNotExist(err) {
		t.Errorf("sentinel survived the reboot: %v", err)
	}
	// The agent was stopped and started again at boot.
	if !sim.Agent().Running() || sim.Agent().Pid() == agentBefore {
		t.Errorf("agent not restarted after the reboot (pid %d before, %d now, running %v)", agentBefore, sim.Agent().Pid(), sim.Agent().Running())
	}
	// The reboot log is JSON lines.
	line, err := os.ReadFile(filepath.Join(filepath.Dir(sim.BootIDFile()), "reboots.log"))
	if err != nil {
		t.Fatal(err)
	}
	var logged nodesim.Reboot
	if err := json.Unmarshal(line, &logged); err != nil || logged.NewBootID != r.NewBootID {
		t.Errorf("reboot log %q: %v", line, err)
	}
}
