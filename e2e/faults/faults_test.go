package faults

import (
	"testing"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/harness"
	"github.com/nodereboot/nodereboot/e2e/observer"
)

// The annotations a user garbles, spelled out as a user types them.
const (
	annState      = "nodereboot.io/state"
	annStateSince = "nodereboot.io/state-since"
	annAuthorized = "nodereboot.io/reboot-authorized"
	annLastReboot = "nodereboot.io/last-reboot"
	annNotBefore  = "nodereboot.io/not-before"
)

func TestFaults(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "leader-killed-mid-drain", fast: true, lostEvents: true, inject: killLeaderAt("Draining", 2*time.Second)},
		{name: "detector-killed-between-rebooting-and-reboot", fast: true, gated: true, setup: gateOneNode, inject: killHeldDetector},
		{name: "apiserver-restarted", fast: true, inject: restartAPIServer},
		{name: "garbage-annotations", fast: true, inject: garbage},
		{name: "pdb-never-allows-eviction", fast: true, args: []string{"--drain-timeout=10s", "--drain-failure-backoff=1h"},
			setup: blockingPDB, recovered: givenBack("node-0")},
	})
}

// killLeaderAt SIGKILLs the leader when a node reaches state, after a
// random delay below max; the replica restarts a second later (the
// supervisor), like a container.
func killLeaderAt(state string, max time.Duration) func(r *run) {
	return func(r *run) {
		node := r.waitState(state)
		d := r.jitter(max)
		p, err := r.h.LeaderProcess(r.ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		p.Kill()
		r.logf("SIGKILLed the leader %s %s after %s reached %s", p.Name, d.Round(time.Millisecond), node, state)
	}
}

// gateOneNode holds the reboot request of one random node at its
// simulated host's gate.
func gateOneNode(r *run) {
	n := pick(r, r.rebootNodes())
	if err := n.ArmRebootGate(); err != nil {
		r.t.Fatal(err)
	}
	r.gated = n.Name()
}

// killHeldDetector SIGKILLs the detector of the gated node after its
// Rebooting event, while its reboot request is held (the request then
// fails: the command never ran), and starts it again: it must issue the
// reboot again, once.
func killHeldDetector(r *run) {
	n := r.h.Node(r.gated)
	held, err := n.WaitHeldReboot(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.obs.WaitFor(r.ctx, "the Rebooting event", func(v observer.View) bool {
		return v.Events(n.Name(), "nodereboot-detector", "Rebooting") > 0
	}); err != nil {
		r.t.Fatal(err)
	}
	d := r.jitter(300 * time.Millisecond)
	n.Agent().Kill()
	if err := held.Release(false); err != nil {
		r.t.Fatal(err)
	}
	r.logf("SIGKILLed the detector of %s %s after its Rebooting event, its reboot request refused", n.Name(), d.Round(time.Millisecond))
	if err := n.Agent().Start(); err != nil {
		r.t.Fatal(err)
	}
}

// restartAPIServer stops the API server (SIGTERM) and starts it again on
// the same port, at a random moment of a drain or of a reboot.
func restartAPIServer(r *run) {
	state := pick(r, []string{"Draining", "Authorized"})
	node := r.waitState(state)
	d := r.jitter(time.Second)
	c := r.h.Cluster
	c.APIServer.Stop(10 * time.Second)
	if err := c.APIServer.Start(); err != nil {
		r.t.Fatal(err)
	}
	if err := c.WaitForAPIServer(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	r.logf("restarted the API server %s after %s reached %s", d.Round(time.Millisecond), node, state)
}

// garbage writes invalid values into the controller's annotations at random
// moments, as a user with kubectl annotate could: a bad state-since and an
// unknown state on nodes in the pipeline, a wrong boot ID in an
// authorization, unparsable times on an idle node.
func garbage(r *run) {
	touched := map[string]bool{}
	mark := func(node string) {
		touched[node] = true
		r.expect.Outcomes[node] = observer.Any
	}
	node := r.waitState("Draining")
	r.jitter(500 * time.Millisecond)
	r.patchNode(node, map[string]any{annStateSince: "yesterday"})
	mark(node)
	r.logf("%s=yesterday on %s (Draining)", annStateSince, node)

	state := pick(r, []string{"Draining", "Authorized"})
	var others []string
	for _, n := range r.rebootNodes() {
		if !touched[n.Name()] {
			others = append(others, n.Name())
		}
	}
	node = r.waitState(state, others...)
	r.jitter(300 * time.Millisecond)
	junk := pick(r, []string{"Rebooting", "", "draining", "Done"})
	r.patchNode(node, map[string]any{annState: junk})
	mark(node)
	r.logf("%s=%q on %s (%s)", annState, junk, node, state)

	others = others[:0]
	for _, n := range r.rebootNodes() {
		if !touched[n.Name()] {
			others = append(others, n.Name())
		}
	}
	if len(others) > 0 {
		node = r.waitState("Authorized", others...)
		wrong := string(uuid.NewUUID())
		r.patchNode(node, map[string]any{annAuthorized: wrong})
		mark(node)
		r.logf("%s=%s (a wrong boot ID) on %s (Authorized)", annAuthorized, wrong, node)
	}

	idle := r.h.Nodes[len(r.h.Nodes)-1].Name()
	r.patchNode(idle, map[string]any{annLastReboot: "last tuesday", annNotBefore: "2026-13-45T99:00:00Z"})
	r.logf("unparsable %s and %s on the idle %s", annLastReboot, annNotBefore, idle)
}

// blockingPDB puts a pod on node-0 whose budget never allows its eviction.
func blockingPDB(r *run) {
	ctx, c := r.ctx, r.h.Cluster.Client
	if _, err := c.AppsV1().Deployments("demo").Create(ctx, pinnedDeployment("pinned", "node-0", 1), metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "pinned", Namespace: "demo"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pinned"}},
		},
	}
	if _, err := c.PolicyV1().PodDisruptionBudgets("demo").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	if err := r.h.WaitForWorkload(ctx, harness.Workload{Name: "pinned", Replicas: 1}); err != nil {
		r.t.Fatal(err)
	}
	r.expect.Outcomes["node-0"] = observer.GivenBack
	r.logf("a pod on node-0 with a PodDisruptionBudget minAvailable 1 of 1")
}

// givenBack: recovered once the node was given back after its failed drain.
func givenBack(node string) func(r *run, v observer.View) bool {
	return func(r *run, v observer.View) bool {
		s, _ := v.State(node)
		return s == "" && v.Events(node, "nodereboot-controller", "DrainFailed") > 0
	}
}
