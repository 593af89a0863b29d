package attacks

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBinaries()
	rev, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	header := fmt.Sprintf("Written by `NODEREBOOT_ATTACKS_RESULTS=<file> go test ./e2e/attacks/` on %s at commit %s (tests %s).",
		time.Now().UTC().Format("2006-01-02"), strings.TrimSpace(string(rev)), map[bool]string{true: "passed", false: "FAILED"}[code == 0])
	if err := WriteResults(header); err != nil {
		fmt.Fprintln(os.Stderr, "write results:", err)
		code = 1
	}
	os.Exit(code)
}

// The controller's annotations (docs/node-contract.md), spelled out again
// here, as an attacker reads them in the documentation.
var controllerAnnotations = []string{
	"nodereboot.io/state", "nodereboot.io/state-since", "nodereboot.io/state-reason",
	"nodereboot.io/cordoned-by-us", "nodereboot.io/reboot-authorized", "nodereboot.io/not-before",
	"nodereboot.io/last-reboot", "nodereboot.io/labels-before-reboot",
	"nodereboot.io/scale-down-disabled-by-us", "nodereboot.io/term", "nodereboot.io/do-not-disrupt-by-us",
}

const (
	annState            = "nodereboot.io/state"
	annStateReason      = "nodereboot.io/state-reason"
	annRebootAuthorized = "nodereboot.io/reboot-authorized"
	annRebootRequested  = "nodereboot.io/reboot-requested"
	annRebooting        = "nodereboot.io/rebooting"
)

// nodeRestriction marks a refusal by the NodeRestriction admission plugin.
const nodeRestriction = "NodeRestriction"

// rbacRefusal marks a refusal by RBAC (the authorizer, before admission).
const rbacRefusal = "RBAC"

// plausible is a value an attacker would write into an annotation.
func plausible(key, bootID string) string {
	now := time.Now().UTC().Format(time.RFC3339)
	switch key {
	case annState:
		return "Authorized"
	case annRebootAuthorized:
		return bootID
	case annStateReason:
		return "authorized boot ID " + bootID
	case "nodereboot.io/state-since", "nodereboot.io/not-before", "nodereboot.io/last-reboot":
		return now
	case "nodereboot.io/labels-before-reboot":
		return `{"node-restriction.kubernetes.io/trusted":"true"}`
	case "nodereboot.io/term":
		return "99"
	default:
		return "true"
	}
}

// write is one write to a node by one identity.
type write struct {
	attack string
	who    string
	cs     kubernetes.Interface
	node   string
	status bool // through nodes/status
	body   []byte
	smp    bool // a strategic-merge patch (default: a merge patch)
	// want: "" admitted; else the policy (base name; several separated by
	// "|") or nodeRestriction that must refuse it, with wantMsg in the
	// message.
	want, wantMsg string
}

func (in *Install) try(ctx context.Context, t *testing.T, w write) {
	t.Helper()
	var sub []string
	if w.status {
		sub = []string{"status"}
	}
	pt := types.MergePatchType
	if w.smp {
		pt = types.StrategicMergePatchType
	}
	_, err := w.cs.CoreV1().Nodes().Patch(ctx, w.node, pt, w.body, metav1.PatchOptions{}, sub...)
	in.check(t, w.attack, w.who, err, w.want, w.wantMsg)
}

// check compares a write's outcome with the expectation and records it.
func (in *Install) check(t *testing.T, attack, who string, err error, want, wantMsg string) {
	t.Helper()
	result := "admitted, as documented"
	switch {
	case want == "" && err != nil:
		t.Errorf("%s by %s: %v, want it admitted", attack, who, err)
		result = "FAILED: refused, want admitted"
	case want == "":
	case err == nil:
		t.Errorf("%s by %s: admitted, want it refused by %s", attack, who, want)
		result = "FAILED: ADMITTED"
	case (want == nodeRestriction || want == rbacRefusal) && (!apierrors.IsForbidden(err) || !strings.Contains(err.Error(), wantMsg)):
		t.Errorf("%s by %s: %v, want 403 from %s with %q", attack, who, err, want, wantMsg)
		result = "FAILED: wrong refusal"
	case want != nodeRestriction && want != rbacRefusal && !in.deniedByOneOf(err, want, wantMsg):
		t.Errorf("%s by %s: %v; want 403 from %s with %q", attack, who, err, want, wantMsg)
		result = "FAILED: wrong refusal"
	default:
		result = "refused"
	}
	in.Record(Outcome{Attack: attack, Who: who, Server: ServerAnswer(err), Result: result})
}

// deniedByOneOf: err is a refusal by one of the policies in want (base
// names separated by "|": a write two policies refuse is reported by
// either) with msg.
func (in *Install) deniedByOneOf(err error, want, msg string) bool {
	for _, p := range strings.Split(want, "|") {
		if DeniedBy(err, in.Name(p)) && strings.Contains(err.Error(), msg) {
			return true
		}
	}
	return false
}

func bootID(ctx context.Context, t *testing.T, in *Install, node string) string {
	t.Helper()
	n, err := in.Cluster.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Status.NodeInfo.BootID
}

// TestAttacks plays every API-server-side attack on the controller's
// annotations and the detector's bounds against deploy/ as installed, with
// the attackers' own credentials, and checks that what must still work
// (the abort, reboot-requested, the controller, the detector) does.
func TestAttacks(t *testing.T) {
	t.Parallel() // its own cluster
	in := Setup(t, Options{Nodes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	patcher := in.Client(t, in.PatcherConfig(ctx, t))
	ctl := in.Client(t, in.ControllerConfig(ctx, t))
	victim, other := in.Nodes[1], in.Nodes[2]
	kubelet := in.Client(t, in.NodeConfig(t, victim))
	det := in.Client(t, in.DetectorConfig(ctx, t, victim))
	boot := bootID(ctx, t, in, victim)
	const (
		whoPatcher = "service account with only `patch` on nodes"
		whoKubelet = "the node's own identity (system:node:<node>, NodeRestriction)"
		whoDet     = "the detector's pod-bound token"
		whoCtl     = "the controller's service account"
	)

	t.Run("forge the authorization", func(t *testing.T) {
		for _, a := range []struct {
			who string
			cs  kubernetes.Interface
		}{{whoPatcher, patcher}, {whoKubelet, kubelet}} {
			in.try(ctx, t, write{attack: "reboot-authorized=<the node's boot ID> (reboot it now, no drain)", who: a.who, cs: a.cs, node: victim,
				body: AnnotationPatch(annRebootAuthorized, &boot), want: ControllerPolicy, wantMsg: "may set " + annRebootAuthorized})
			in.try(ctx, t, write{attack: "the same through nodes/status", who: a.who, cs: a.cs, node: victim, status: true,
				body: AnnotationPatch(annRebootAuthorized, &boot), want: ControllerPolicy, wantMsg: "may set " + annRebootAuthorized})
		}
		// The detector's policy and the controller's both refuse it.
		in.try(ctx, t, write{attack: "reboot-authorized=<its own boot ID>", who: whoDet, cs: det, node: victim,
			body: AnnotationPatch(annRebootAuthorized, &boot), want: ControllerPolicy + "|" + DetectorPolicy, wantMsg: annRebootAuthorized})
	})

	t.Run("put every node out", func(t *testing.T) {
		for _, n := range in.Nodes {
			in.try(ctx, t, write{attack: "state=Draining on " + n + " (every node cordoned and drained at once)", who: whoPatcher, cs: patcher, node: n,
				body: AnnotationPatch(annState, ptr.To("Draining")), want: ControllerPolicy, wantMsg: "may set " + annState})
		}
	})

	t.Run("each controller annotation", func(t *testing.T) {
		for _, k := range controllerAnnotations {
			v := plausible(k, boot)
			in.try(ctx, t, write{attack: "set " + k, who: whoPatcher, cs: patcher, node: victim,
				body: AnnotationPatch(k, &v), want: ControllerPolicy, wantMsg: "may set " + k})
			in.try(ctx, t, write{attack: "set " + k + " on its own Node", who: whoKubelet, cs: kubelet, node: victim,
				body: AnnotationPatch(k, &v), want: ControllerPolicy, wantMsg: "may set " + k})
		}
	})

	t.Run("the kubelet writes another node", func(t *testing.T) {
		in.try(ctx, t, write{attack: "state=Draining on another node", who: whoKubelet, cs: kubelet, node: other,
			body: AnnotationPatch(annState, ptr.To("Draining")), want: nodeRestriction, wantMsg: "not allowed to modify node"})
	})

	t.Run("the controller writes and removes its annotations", func(t *testing.T) {
		for _, k := range controllerAnnotations {
			v := plausible(k, bootID(ctx, t, in, other))
			in.try(ctx, t, write{attack: "set " + k, who: whoCtl, cs: ctl, node: other, body: AnnotationPatch(k, &v)})
		}
		for _, k := range controllerAnnotations {
			in.try(ctx, t, write{attack: "remove " + k, who: whoCtl, cs: ctl, node: other, body: AnnotationPatch(k, nil)})
		}
	})

	t.Run("abort and request still work", func(t *testing.T) {
		for _, a := range []struct {
			who string
			cs  kubernetes.Interface
		}{{whoPatcher, patcher}, {whoKubelet, kubelet}} {
			// The controller puts the node out, the attacker tampers.
			in.try(ctx, t, write{attack: "(setup) state=Failed, state-reason", who: whoCtl, cs: ctl, node: victim,
				body: fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"Failed",%q:"DrainFailed"}}}`, annState, annStateReason)})
			in.try(ctx, t, write{attack: "remove state-reason (the controller's record)", who: a.who, cs: a.cs, node: victim,
				body: AnnotationPatch(annStateReason, nil), want: ControllerPolicy, wantMsg: "may remove " + annStateReason})
			in.try(ctx, t, write{attack: "change state Failed -> Draining", who: a.who, cs: a.cs, node: victim,
				body: AnnotationPatch(annState, ptr.To("Draining")), want: ControllerPolicy, wantMsg: "may set " + annState})
			in.try(ctx, t, write{attack: "remove state (the documented abort)", who: a.who, cs: a.cs, node: victim,
				body: AnnotationPatch(annState, nil)})
			in.try(ctx, t, write{attack: "(cleanup) remove state-reason", who: whoCtl, cs: ctl, node: victim, body: AnnotationPatch(annStateReason, nil)})
			in.try(ctx, t, write{attack: "set reboot-requested", who: a.who, cs: a.cs, node: victim, body: AnnotationPatch(annRebootRequested, ptr.To("yes"))})
			in.try(ctx, t, write{attack: "remove reboot-requested", who: a.who, cs: a.cs, node: victim, body: AnnotationPatch(annRebootRequested, nil)})
		}
	})

	t.Run("nodes/status writes annotations", func(t *testing.T) {
		// Why the policy covers nodes/status: the API server stores the
		// metadata of a status update too.
		in.try(ctx, t, write{attack: "an unrelated annotation through nodes/status", who: whoPatcher, cs: patcher, node: victim, status: true,
			body: AnnotationPatch("e2e.example.com/via-status", ptr.To("stored"))})
		n, err := in.Cluster.Client.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Annotations["e2e.example.com/via-status"] != "stored" {
			t.Errorf("a nodes/status patch did not store the annotation: nodes/status would need no policy; annotations %v", n.Annotations)
		} else {
			in.Record(Outcome{Attack: "(check) the annotation written through nodes/status", Who: "admin GET",
				Server: "stored on the Node", Result: "nodes/status writes metadata: the policy must (and does) cover it"})
		}
	})

	t.Run("detector bounds", func(t *testing.T) {
		in.try(ctx, t, write{attack: "rebooting=<not a boot ID>", who: whoDet, cs: det, node: victim,
			body: AnnotationPatch(annRebooting, ptr.To("$(reboot)")), want: DetectorPolicy, wantMsg: "must be a boot ID"})
		in.try(ctx, t, write{attack: "rebooting=<a 4 KiB value>", who: whoDet, cs: det, node: victim,
			body: AnnotationPatch(annRebooting, ptr.To(strings.Repeat("0", 4096))), want: DetectorPolicy, wantMsg: "must be a boot ID"})
		in.try(ctx, t, write{attack: "rebooting=<a boot ID>", who: whoDet, cs: det, node: victim, body: AnnotationPatch(annRebooting, &boot)})
		in.try(ctx, t, write{attack: "remove rebooting", who: whoDet, cs: det, node: victim, body: AnnotationPatch(annRebooting, nil)})
		in.try(ctx, t, write{attack: "rebooting on another node", who: whoDet, cs: det, node: other,
			body: AnnotationPatch(annRebooting, &boot), want: DetectorPolicy, wantMsg: "may not write node " + other})
		cond := func(status, reason, msg string) []byte {
			now := time.Now().UTC().Format(time.RFC3339)
			return fmt.Appendf(nil, `{"status":{"conditions":[{"type":"RebootRequired","status":%q,"reason":%q,"message":%q,"lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`,
				status, reason, msg, now, now)
		}
		for _, c := range []struct {
			attack, status, reason, msg string
			ok                          bool
		}{
			{"condition with a 5000-character message", "True", "RebootRequired", strings.Repeat("x", 5000), false},
			{"condition with a reason that is not a word", "True", "Reboot now; rm -rf", "m", false},
			{"condition with a 200-character reason", "True", strings.Repeat("R", 200), "m", false},
			{"condition with status Maybe", "Maybe", "RebootRequired", "m", false},
			{"its condition, well-formed", "True", "RebootRequired", "Sentinel /var/run/reboot-required is present", true},
		} {
			w := write{attack: c.attack, who: whoDet, cs: det, node: victim, status: true, smp: true, body: cond(c.status, c.reason, c.msg)}
			if !c.ok {
				w.want, w.wantMsg = DetectorPolicy, "the detector's condition must have"
			}
			in.try(ctx, t, w)
		}
	})

	t.Run("detector events", func(t *testing.T) {
		create := func(ns string, e *corev1.Event) error {
			_, err := det.CoreV1().Events(ns).Create(ctx, e, metav1.CreateOptions{})
			return err
		}
		in.check(t, "event about its own Node in default", whoDet, create("default", NodeEvent(victim)), "", "")
		in.check(t, "event about another Node", whoDet, create("default", NodeEvent(other)), EventsPolicy, "may record events only about Node "+victim)
		in.check(t, "event about its own Node in kube-system", whoDet, create("kube-system", NewNodeEvent(victim)), EventsPolicy, "only in namespace default")
		podEvent := NodeEvent(victim)
		podEvent.InvolvedObject = corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-0"}
		_, err := det.CoreV1().Events("default").Create(ctx, podEvent, metav1.CreateOptions{})
		in.check(t, "event about a pod", whoDet, err, EventsPolicy, "not Pod web-0")
	})

	t.Run("lifecycle conditions", func(t *testing.T) {
		testLifecycleConditions(ctx, t, in, ctl, patcher)
	})

	// Least privilege, and failing closed: without its RBAC permission the
	// controller itself is refused; with it back, admitted again.
	t.Run("the controller without manage nodes.nodereboot.io", func(t *testing.T) {
		testControllerLosesPermission(ctx, t, in, ctl)
	})
	t.Run("the controller without patch nodes/status", func(t *testing.T) {
		testControllerLosesStatusPermission(ctx, t, in, ctl)
	})

	// The verdict: none of the attackers' values is on any node.
	t.Run("verdict", func(t *testing.T) {
		nodes, err := in.Cluster.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, n := range nodes.Items {
			for _, k := range controllerAnnotations {
				if v, ok := n.Annotations[k]; ok {
					found = append(found, fmt.Sprintf("%s %s=%s", n.Name, k, v))
				}
			}
			if n.Spec.Unschedulable {
				found = append(found, n.Name+" cordoned")
			}
		}
		if len(found) > 0 {
			t.Errorf("after the attacks: %v, want no controller annotation and no cordon", found)
		}
		in.Record(Outcome{Attack: "(verdict) controller annotations or cordons left on any node", Who: "observer (admin LIST)",
			Server: fmt.Sprintf("%d found", len(found)), Result: map[bool]string{true: "none", false: "FAILED"}[len(found) == 0]})
	})
}

// TestRenamedInstall installs deploy/ renamed by a kustomize overlay
// (namePrefix, nameSuffix, namespace): the policies keep the renamed
// controller and detector as theirs and stay closed to everybody else,
// including service accounts that carry the default names.
func TestRenamedInstall(t *testing.T) {
	t.Parallel() // its own cluster
	in := Setup(t, Options{Nodes: 2, NamePrefix: "acme-", NameSuffix: "-v2", Namespace: "acme-system"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if in.ControllerUser() != "system:serviceaccount:acme-system:acme-nodereboot-controller-v2" {
		t.Fatalf("renamed controller %s", in.ControllerUser())
	}
	ctl := in.Client(t, in.ControllerConfig(ctx, t))
	patcher := in.Client(t, in.PatcherConfig(ctx, t))
	det := in.Client(t, in.DetectorConfig(ctx, t, in.Nodes[0]))
	own, other := in.Nodes[0], in.Nodes[1]
	boot := bootID(ctx, t, in, own)

	// Service accounts with the default names, in the default namespace,
	// with the node patcher's rights: a name is no identity.
	var impostors []kubernetes.Interface
	for _, sa := range []string{"nodereboot-controller", "nodereboot-detector"} {
		_, cfg, err := in.Cluster.ServiceAccountKubeconfig(ctx, "nodereboot-system", sa)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.Cluster.Kubectl(ctx, "create", "clusterrolebinding", "e2e-impostor-"+sa, "--clusterrole=e2e-node-patcher",
			"--serviceaccount=nodereboot-system:"+sa); err != nil {
			t.Fatal(err)
		}
		impostors = append(impostors, in.Client(t, in.tokenConfig(cfg.BearerToken)))
	}

	in.try(ctx, t, write{attack: "set state", who: "the renamed controller (" + in.ControllerUser() + ")", cs: ctl, node: other,
		body: AnnotationPatch(annState, ptr.To("Draining"))})
	in.try(ctx, t, write{attack: "remove state", who: "the renamed controller", cs: ctl, node: other, body: AnnotationPatch(annState, nil)})
	in.try(ctx, t, write{attack: "reboot-authorized=<boot ID>", who: "service account with only `patch` on nodes", cs: patcher, node: own,
		body: AnnotationPatch(annRebootAuthorized, &boot), want: ControllerPolicy, wantMsg: "may set " + annRebootAuthorized})
	in.try(ctx, t, write{attack: "reboot-authorized=<boot ID>", who: "nodereboot-system/nodereboot-controller (the default name, not the install's)",
		cs: impostors[0], node: own, body: AnnotationPatch(annRebootAuthorized, &boot), want: ControllerPolicy, wantMsg: "may set " + annRebootAuthorized})
	in.try(ctx, t, write{attack: "state=Draining", who: "nodereboot-system/nodereboot-detector (the default name)",
		cs: impostors[1], node: own, body: AnnotationPatch(annState, ptr.To("Draining")), want: ControllerPolicy, wantMsg: "may set " + annState})
	in.try(ctx, t, write{attack: "rebooting on another node", who: "the renamed detector's pod-bound token", cs: det, node: other,
		body: AnnotationPatch(annRebooting, &boot), want: DetectorPolicy, wantMsg: "may not write node " + other})
	in.try(ctx, t, write{attack: "cordon another node", who: "the renamed detector's pod-bound token", cs: det, node: other,
		body: []byte(`{"spec":{"unschedulable":true}}`), want: DetectorPolicy, wantMsg: "may not write node " + other})
	in.try(ctx, t, write{attack: "rebooting=<boot ID> on its own node", who: "the renamed detector's pod-bound token", cs: det, node: own,
		body: AnnotationPatch(annRebooting, &boot)})
	in.try(ctx, t, write{attack: "(cleanup) remove rebooting", who: "the renamed detector's pod-bound token", cs: det, node: own,
		body: AnnotationPatch(annRebooting, nil)})
	_, err := det.CoreV1().Events("default").Create(ctx, NodeEvent(other), metav1.CreateOptions{})
	in.check(t, "event about another Node", "the renamed detector's pod-bound token", err, EventsPolicy, "may record events only about Node "+own)
}

// testControllerLosesPermission removes the rule `manage nodes.nodereboot.io`
// from the controller's ClusterRole, checks that the controller's write of
// its own annotation is then refused, and puts the rule back.
func testControllerLosesPermission(ctx context.Context, t *testing.T, in *Install, ctl kubernetes.Interface) {
	last := withoutControllerRule(ctx, t, in, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.APIGroups, "nodereboot.io") },
		func() error {
			_, err := ctl.CoreV1().Nodes().Patch(ctx, in.Nodes[2], types.MergePatchType, AnnotationPatch(annState, ptr.To("Draining")),
				metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		})
	in.check(t, "set state (dry run) after `manage nodes.nodereboot.io` was removed from its ClusterRole", "the controller's service account",
		last, ControllerPolicy, "may set "+annState)
}

// withoutControllerRule removes the one rule drop matches from the
// controller's ClusterRole, waits until write fails (RBAC reaches the
// authorizer through an informer), puts the rule back, and returns write's
// last error.
func withoutControllerRule(ctx context.Context, t *testing.T, in *Install, drop func(rbacv1.PolicyRule) bool, write func() error) error {
	t.Helper()
	roles := in.Cluster.Client.RbacV1().ClusterRoles()
	role, err := roles.Get(ctx, in.Name("nodereboot-controller"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	saved := role.DeepCopy()
	var kept []rbacv1.PolicyRule
	for _, r := range role.Rules {
		if !drop(r) {
			kept = append(kept, r)
		}
	}
	if len(kept) != len(role.Rules)-1 {
		t.Fatalf("the controller's ClusterRole has %d rules to remove, want 1", len(role.Rules)-len(kept))
	}
	role.Rules = kept
	if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cur, err := roles.Get(ctx, saved.Name, metav1.GetOptions{})
		if err == nil {
			cur.Rules = saved.Rules
			_, err = roles.Update(ctx, cur, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Errorf("restore the controller's ClusterRole: %v", err)
		}
	}()
	var last error
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		last = write()
		return last != nil, nil
	}); err != nil {
		t.Fatalf("the controller without the rule is still admitted (%v)", err)
	}
	return last
}

// TestWithoutPolicies installs deploy/ without its policies, as on a cluster
// before Kubernetes 1.30 (docs/install.md): the headline attack then gets
// through the API server, which is what the policies are for. (What the
// controller and the detector still hold on their own is their part.)
func TestWithoutPolicies(t *testing.T) {
	t.Parallel() // its own cluster
	in := Setup(t, Options{Nodes: 2, WithoutPolicies: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	policies, err := in.Cluster.Client.AdmissionregistrationV1().ValidatingAdmissionPolicies().List(ctx, metav1.ListOptions{})
	if err != nil || len(policies.Items) != 0 {
		t.Fatalf("policies installed: %v (%v)", policies, err)
	}
	patcher := in.Client(t, in.PatcherConfig(ctx, t))
	boot := bootID(ctx, t, in, in.Nodes[0])
	_, err = patcher.CoreV1().Nodes().Patch(ctx, in.Nodes[0], types.MergePatchType, AnnotationPatch(annRebootAuthorized, &boot),
		metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
	result := "ADMITTED: only RBAC applies (documented loss)"
	if err != nil {
		t.Errorf("without the policies the API server refused the forged authorization: %v", err)
		result = "FAILED"
	}
	in.Record(Outcome{Attack: "reboot-authorized=<the node's boot ID> (dry run)", Who: "service account with only `patch` on nodes",
		Server: ServerAnswer(err), Result: result})
}
