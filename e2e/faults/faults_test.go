package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/harness"
	"github.com/nodereboot/nodereboot/e2e/nodesim"
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
		{name: "apiserver-restarted", fast: true, lostEvents: true, inject: restartAPIServer},
		{name: "garbage-annotations", fast: true, inject: garbage},
		{name: "pdb-never-allows-eviction", fast: true, args: []string{"--drain-timeout=10s", "--drain-failure-backoff=1h"},
			setup: blockingPDB, recovered: givenBack("node-0")},

		// The full suite (NODEREBOOT_FAULTS=full).
		{name: "leader-killed-at-cordon", lostEvents: true, inject: killLeaderAt("Draining", 150*time.Millisecond)},
		{name: "leader-killed-waiting-for-reboot", lostEvents: true, inject: killLeaderAt("Authorized", 500*time.Millisecond)},
		{name: "leader-killed-at-uncordon", lostEvents: true, args: []string{"--post-reboot-soak=2s"}, inject: killLeaderAt("Rebooted", 2500*time.Millisecond)},
		// The leader killed in the other states a node goes through: a
		// new leader must resume from what the Node and the slot record
		// carry (pkg/controller resume_test.go checks its decisions).
		{name: "leader-killed-with-requests-queued", lostEvents: true, inject: killLeaderWhenQueued},
		{name: "leader-killed-after-the-rebooting-commitment", lostEvents: true, gated: true, setup: gateOneNode, inject: killLeaderAtCommitment},
		{name: "leader-killed-on-a-failed-node", lostEvents: true, args: []string{"--reboot-timeout=15s"}, setup: hangOneNode, after: unhang,
			inject: killLeaderAt("Failed", 500*time.Millisecond), recovered: targetIn("Failed")},
		{name: "both-replicas-killed", lostEvents: true, inject: killBoth},
		{name: "detector-down-for-the-rollout", args: []string{"--reboot-timeout=15s"}, setup: detectorDown, after: detectorBack,
			recovered: targetIn("Failed")},
		{name: "etcd-restarted", lostEvents: true, inject: restartEtcd},
		{name: "apiserver-unreachable-30s", runs: 2, lostEvents: true, inject: apiServerDown(30 * time.Second)},
		{name: "pod-never-terminates", args: []string{"--drain-timeout=10s", "--drain-failure-backoff=1h"},
			setup: stuckPod, recovered: givenBack("node-0")},
		{name: "pdb-never-allows-eviction-hold", args: []string{"--drain-timeout=10s", "--on-drain-failure=hold"}, setup: blockingPDBHold,
			recovered: func(r *run, v observer.View) bool { s, _ := v.State("node-0"); return s == "Failed" }},
		{name: "pdb-never-allows-eviction-force-reboot", forceReboot: true, args: []string{"--drain-timeout=10s"}, setup: blockingPDBForce,
			recovered: func(r *run, v observer.View) bool { return v.Reboots("node-0") > 0 }},
		{name: "reboot-never-completes", args: []string{"--reboot-timeout=15s"}, setup: hangOneNode, after: unhang,
			recovered: targetIn("Failed")},
		{name: "node-deleted-mid-rollout", budgetDips: true, inject: deleteNode},
		{name: "node-added-mid-rollout", inject: addNode,
			recovered: func(r *run, v observer.View) bool {
				s, _ := v.State(r.target)
				return v.Reboots(r.target) > 0 && s == ""
			}},
		{name: "sentinel-back-right-after-the-reboot", setup: sentinelBack, after: sentinelBackChecked,
			recovered: func(r *run, v observer.View) bool {
				return v.Events(r.target, "nodereboot-controller", "RebootRequiredAgain") > 0
			}},
		{name: "controller-clock-5m-ahead", args: []string{"--testing-clock-offset=5m"}},

		// Attacks: a node agent's credentials (patch on nodes, nothing
		// else), on a cluster without the admission policy.
		{name: "attack-forged-pipeline-annotations", inject: forgedAnnotations},
		{name: "controller-clock-5m-behind", runs: 2, args: []string{"--testing-clock-offset=-5m"}},
	})
}

// targetIn: recovered once the fault's target node reached the state.
func targetIn(state string) func(r *run, v observer.View) bool {
	return func(r *run, v observer.View) bool {
		s, _ := v.State(r.target)
		return s == state
	}
}

// killBoth SIGKILLs both replicas at once during a drain; both restart.
func killBoth(r *run) {
	node := r.waitState("Draining")
	d := r.jitter(time.Second)
	for _, p := range r.h.Controllers {
		_ = p.Signal(syscall.SIGKILL)
	}
	for _, p := range r.h.Controllers {
		<-p.Exited()
	}
	r.logf("SIGKILLed both replicas %s after %s reached Draining", d.Round(time.Millisecond), node)
}

// detectorDown stops the detector of one node for the whole rollout, after
// it reported the reboot condition (written here, as it would have).
func detectorDown(r *run) {
	n := pick(r, r.rebootNodes())
	n.Agent().Stop(5 * time.Second)
	now := metav1.Now()
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{{
		Type: "RebootRequired", Status: corev1.ConditionTrue, Reason: "SentinelPresent",
		Message: "written before the detector went down", LastHeartbeatTime: now, LastTransitionTime: now,
	}}}})
	if _, err := r.h.Cluster.Client.CoreV1().Nodes().Patch(r.ctx, n.Name(), types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		r.t.Fatal(err)
	}
	r.target = n.Name()
	r.expect.Outcomes[n.Name()] = observer.Failed
	r.logf("stopped the detector of %s for the whole rollout", n.Name())
}

// detectorBack starts the detector again once the rollout ended (its node
// Failed, RebootTimeout): the authorization was withdrawn, so it must not
// reboot. Its first condition write after the start is the sync point.
func detectorBack(r *run) {
	n := r.h.Node(r.target)
	started := time.Now()
	if err := n.Agent().Start(); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.h.Cluster.WaitForNode(r.ctx, n.Name(), func(node *corev1.Node) bool {
		for _, c := range node.Status.Conditions {
			if c.Type == "RebootRequired" {
				return c.LastHeartbeatTime.Time.After(started.Add(-time.Second))
			}
		}
		return false
	}); err != nil {
		r.t.Fatal(err)
	}
	if got := len(n.Reboots()); got != 0 {
		r.t.Errorf("%s rebooted %d times after its authorization timed out", n.Name(), got)
	}
	r.logf("detector of %s back after the rollout: no reboot", n.Name())
}

// restartEtcd stops etcd and starts it again at a random moment of a drain
// or of a reboot.
func restartEtcd(r *run) {
	state := pick(r, []string{"Draining", "Authorized"})
	node := r.waitState(state)
	d := r.jitter(time.Second)
	c := r.h.Cluster
	c.Etcd.Stop(10 * time.Second)
	if err := c.Etcd.Start(); err != nil {
		r.t.Fatal(err)
	}
	if err := c.WaitForAPIServer(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	r.logf("restarted etcd %s after %s reached %s", d.Round(time.Millisecond), node, state)
}

// apiServerDown stops the API server for a while (unreachable: the port is
// closed) and starts it again on the same port.
func apiServerDown(down time.Duration) func(r *run) {
	return func(r *run) {
		state := pick(r, []string{"Draining", "Authorized"})
		node := r.waitState(state)
		d := r.jitter(time.Second)
		c := r.h.Cluster
		c.APIServer.Stop(10 * time.Second)
		time.Sleep(down) // the outage itself
		if err := c.APIServer.Start(); err != nil {
			r.t.Fatal(err)
		}
		if err := c.WaitForAPIServer(r.ctx); err != nil {
			r.t.Fatal(err)
		}
		r.logf("API server unreachable for %s from %s after %s reached %s", down, d.Round(time.Millisecond), node, state)
	}
}

// stuckPod puts a pod on node-0 that never terminates (a finalizer nobody
// removes): its eviction is accepted, the pod stays Terminating.
func stuckPod(r *run) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: "demo", Finalizers: []string{"faults.nodereboot.io/never"}},
		Spec: corev1.PodSpec{
			NodeName:   "node-0",
			Containers: []corev1.Container{{Name: "stuck", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	if _, err := r.h.Cluster.Client.CoreV1().Pods("demo").Create(r.ctx, p, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	r.expect.Outcomes["node-0"] = observer.GivenBack
	r.t.Cleanup(func() {
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		_, _ = r.h.Cluster.Client.CoreV1().Pods("demo").Patch(context.Background(), "stuck", types.MergePatchType, patch, metav1.PatchOptions{})
	})
	r.logf("a pod on node-0 with a finalizer nobody removes")
}

func blockingPDBHold(r *run) {
	blockingPDB(r)
	r.expect.Outcomes["node-0"] = observer.Failed
}

func blockingPDBForce(r *run) {
	blockingPDB(r)
	r.expect.Outcomes["node-0"] = observer.Rebooted
}

// hangOneNode makes the reboot of one node never complete.
func hangOneNode(r *run) {
	n := pick(r, r.rebootNodes())
	n.HangReboots()
	r.target = n.Name()
	r.expect.Outcomes[n.Name()] = observer.Failed
	r.logf("the reboot of %s never completes", n.Name())
}

// unhang lets the hung node boot after the rollout ended (it is Failed):
// its late boot must change nothing but the boot ID.
func unhang(r *run) {
	n := r.h.Node(r.target)
	n.UnhangReboots()
	if _, err := n.WaitForReboots(r.ctx, 1); err != nil {
		r.t.Fatal(err)
	}
	if err := r.obs.WaitFor(r.ctx, "the late boot seen", func(v observer.View) bool { return v.Reboots(n.Name()) == 1 && v.Ready(n.Name()) }); err != nil {
		r.t.Fatal(err)
	}
	r.logf("%s booted after the rollout ended", n.Name())
}

// deleteNode deletes a node (and its host) in the middle of its drain.
func deleteNode(r *run) {
	node := r.waitState(pick(r, []string{"Draining", "Authorized"}))
	d := r.jitter(500 * time.Millisecond)
	r.h.Node(node).Stop()
	if err := r.h.Cluster.Client.CoreV1().Nodes().Delete(r.ctx, node, metav1.DeleteOptions{}); err != nil {
		r.t.Fatal(err)
	}
	r.expect.Outcomes[node] = observer.Any
	r.logf("deleted %s (and its host) %s into its step", node, d.Round(time.Millisecond))
}

// addNode adds a node that needs a reboot once the first reboot completed.
func addNode(r *run) {
	if err := r.obs.WaitFor(r.ctx, "a completed reboot", func(v observer.View) bool {
		for _, n := range r.rebootNodes() {
			if v.Events(n.Name(), "nodereboot-controller", "RebootCompleted") > 0 {
				return true
			}
		}
		return false
	}); err != nil {
		r.t.Fatal(err)
	}
	name := fmt.Sprintf("node-%d", len(r.h.Nodes))
	if err := r.h.Cluster.CreateNodes(r.ctx, name); err != nil {
		r.t.Fatal(err)
	}
	n, err := r.h.AddHost(r.ctx, name)
	if err != nil {
		r.t.Fatal(err)
	}
	r.obs.AddHost(name, n.LogFile())
	if err := n.CreateSentinel(); err != nil {
		r.t.Fatal(err)
	}
	r.expect.Outcomes[name] = observer.Rebooted
	r.target = name
	r.logf("added %s, which needs a reboot, after the first reboot completed", name)
}

// sentinelBack puts the sentinel back right after the first reboot of one
// node (a second update arrived while it rebooted).
func sentinelBack(r *run) {
	n := pick(r, r.rebootNodes())
	n.SetBootHook(func(n *nodesim.Node) error {
		n.SetBootHook(nil)
		return n.CreateSentinel()
	})
	r.target = n.Name()
	r.logf("the sentinel of %s is back right after its reboot", n.Name())
}

// sentinelBackChecked: the controller saw the new request (written after the
// boot: the detector's first write after its start has a fresh heartbeat)
// and holds it for --min-reboot-interval: one reboot.
func sentinelBackChecked(r *run) {
	n := r.target
	ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
	defer cancel()
	if err := r.obs.WaitFor(ctx, "RebootRequiredAgain on "+n, func(v observer.View) bool {
		return v.Events(n, "nodereboot-controller", "RebootRequiredAgain") > 0
	}); err != nil {
		r.t.Error(err)
	}
	if got := len(r.h.Node(n).Reboots()); got != 1 {
		r.t.Errorf("%s rebooted %d times, want 1 (the next reboot waits for --min-reboot-interval)", n, got)
	}
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

// killLeaderWhenQueued SIGKILLs the leader once it announced a node
// waiting for a slot (RebootQueued), before or as it takes the first ones.
func killLeaderWhenQueued(r *run) {
	var node string
	if err := r.obs.WaitFor(r.ctx, "a RebootQueued event", func(v observer.View) bool {
		for _, n := range r.rebootNodes() {
			if v.Events(n.Name(), "nodereboot-controller", "RebootQueued") > 0 {
				node = n.Name()
				return true
			}
		}
		return false
	}); err != nil {
		r.t.Fatal(err)
	}
	d := r.jitter(300 * time.Millisecond)
	p, err := r.h.LeaderProcess(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	p.Kill()
	r.logf("SIGKILLed the leader %s %s after %s was queued", p.Name, d.Round(time.Millisecond), node)
}

// killLeaderAtCommitment SIGKILLs the leader while the gated node's
// detector has committed to its reboot (the rebooting annotation) and the
// request is held at the host, then lets the reboot go: the new leader
// must see the reboot through from the Node alone.
func killLeaderAtCommitment(r *run) {
	n := r.h.Node(r.target)
	held, err := n.WaitHeldReboot(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.obs.WaitFor(r.ctx, "the rebooting commitment", func(v observer.View) bool {
		s, _ := v.Annotation(n.Name(), "nodereboot.io/rebooting")
		return s != ""
	}); err != nil {
		r.t.Fatal(err)
	}
	p, err := r.h.LeaderProcess(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	p.Kill()
	d := r.jitter(time.Second)
	if err := held.Release(true); err != nil {
		r.t.Fatal(err)
	}
	r.logf("SIGKILLed the leader %s while %s was committed to its reboot; released the reboot %s later", p.Name, n.Name(), d.Round(time.Millisecond))
}

// gateOneNode holds the reboot request of one random node at its
// simulated host's gate.
func gateOneNode(r *run) {
	n := pick(r, r.rebootNodes())
	if err := n.ArmRebootGate(); err != nil {
		r.t.Fatal(err)
	}
	r.target = n.Name()
}

// killHeldDetector SIGKILLs the detector of the gated node after its
// Rebooting event, while its reboot request is held (the request then
// fails: the command never ran), and starts it again: it must issue the
// reboot again, once.
func killHeldDetector(r *run) {
	n := r.h.Node(r.target)
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

// forgedAnnotations is an attack during the rollout, with the rights many
// node agents have (get and patch on nodes): state=Draining and
// cordoned-by-us on every node not in the pipeline, and an authorization of
// its current boot on the idle node. The controller must reset them and act
// on none (the observer counts only what the controller wrote: I1 never
// more than --max-concurrent, I2 no reboot on the forged authorization, I5
// the idle node untouched).
func forgedAnnotations(r *run) {
	agent := nodePatcher(r)
	busy := r.waitState("Draining")
	idle := r.h.Nodes[len(r.h.Nodes)-1]
	r.jitter(300 * time.Millisecond)
	for _, n := range r.h.Nodes {
		if n.Name() == busy {
			continue
		}
		ann := map[string]any{annState: "Draining", "nodereboot.io/cordoned-by-us": "true"}
		if n.Name() == idle.Name() {
			ann[annAuthorized] = idle.BootID()
		}
		b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
		if _, err := agent.CoreV1().Nodes().Patch(r.ctx, n.Name(), types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
			r.t.Fatalf("the node agent's patch of %s: %v", n.Name(), err)
		}
	}
	r.logf("a node agent wrote state=Draining and cordoned-by-us on every node but %s, and reboot-authorized=<its boot> on the idle %s", busy, idle.Name())
}

// nodePatcher is a client with only get, list and patch on nodes.
func nodePatcher(r *run) kubernetes.Interface {
	ctx, c := r.ctx, r.h.Cluster
	_, cfg, err := c.ServiceAccountKubeconfig(ctx, "agents", "node-agent")
	if err != nil {
		r.t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "node-agent"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "patch"}}}}
	if _, err := c.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "node-agent"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "node-agent"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "agents", Name: "node-agent"}}}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	cfg.UserAgent = "node-agent"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return client
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
