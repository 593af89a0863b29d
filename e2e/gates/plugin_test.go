package gates_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodereboot/nodereboot/e2e/harness"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// plugin runs kubectl-nodereboot as the cluster's admin, as a user would
// with their kubeconfig.
func (e *env) plugin(args ...string) string {
	e.t.Helper()
	cmd := exec.CommandContext(e.ctx, filepath.Join(binDir, "kubectl-nodereboot"), append([]string{"--kubeconfig=" + e.h.Cluster.AdminKubeconfig}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("kubectl-nodereboot %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// squeeze collapses the spaces of a table.
func squeeze(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}

// The kubectl plugin on the real control plane: status, request, history,
// pause and resume; and through kubectl itself, with the plugin on PATH.
func TestKubectlPlugin(t *testing.T) {
	e := setup(t, 2, 4*time.Minute)
	e.startController("controller")
	for _, n := range []string{"node-0", "node-1"} {
		e.waitNode(n, func(n *corev1.Node) bool {
			for _, c := range n.Status.Conditions {
				if string(c.Type) == contract.DefaultConditionType {
					return c.Status == corev1.ConditionFalse
				}
			}
			return false
		}, "detector reports")
	}

	st := squeeze(e.plugin("status"))
	for _, want := range []string{"Paused: no", "NODE REBOOTREQUIRED SINCE STATE SINCE EVICTED LAST REBOOT BLOCKED", "node-0 False", "node-1 False"} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}

	if out := e.plugin("request", "node-0"); !strings.Contains(out, "reboot requested") {
		t.Errorf("request: %s", out)
	}
	e.waitNode("node-0", func(n *corev1.Node) bool {
		_, requested := n.Annotations[contract.AnnotationRebootRequested]
		return rebootDone(n) && !requested
	}, "rebooted on request; the request removed")
	e.waitEvent("node-0", contract.ReasonRebootDone)
	hist := e.plugin("history", "node-0")
	last := -1
	for _, r := range []string{contract.ReasonCordoned, contract.ReasonDraining, contract.ReasonRebootAuthorized,
		contract.ReasonRebooting, contract.ReasonRebooted, contract.ReasonRebootDone} {
		i := strings.Index(hist, " "+r+" ")
		if i < 0 || i < last {
			t.Errorf("history lacks %s, or not in order:\n%s", r, hist)
		}
		last = i
	}

	if out := e.plugin("pause", "--reason=plugin test"); !strings.Contains(out, "paused") {
		t.Errorf("pause: %s", out)
	}
	e.request("node-1")
	e.waitEvent("node-1", contract.ReasonRebootBlocked, "paused", "plugin test")

	// Through kubectl, with the plugin on PATH.
	kubectl := exec.CommandContext(e.ctx, filepath.Join(binDir, "kubectl"), "nodereboot", "status")
	kubectl.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+e.h.Cluster.AdminKubeconfig)
	out, err := kubectl.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl nodereboot status: %v\n%s", err, out)
	}
	st = squeeze(string(out))
	for _, want := range []string{"Paused: yes (plugin test)", "node-1 True", "paused (nodereboot.io/paused annotation on ConfigMap nodereboot-system/nodereboot-config): plugin test"} {
		if !strings.Contains(st, want) {
			t.Errorf("kubectl nodereboot status lacks %q:\n%s", want, out)
		}
	}

	if out := e.plugin("resume"); !strings.Contains(out, "resumed") {
		t.Errorf("resume: %s", out)
	}
	e.waitNode("node-1", rebootDone, "rebooted after the resume")
}

// pluginAs runs kubectl-nodereboot with a kubeconfig and returns its
// combined output and error.
func (e *env) pluginAs(kubeconfig string, args ...string) (string, error) {
	cmd := exec.CommandContext(e.ctx, filepath.Join(binDir, "kubectl-nodereboot"), append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// The plugin on the real API server as an operator with the least it needs
// (docs/kubectl-plugin.md#permissions): nodes list, events list in
// namespace default only (a Role, no cluster-wide events), the pause
// ConfigMap. What others wrote — an event and a pause reason with an ESC
// sequence, a forged event in another namespace — is shown escaped or not
// at all. Without the events Role, status fails: that privilege is needed.
func TestKubectlPluginLeastPrivilegeAndEscapes(t *testing.T) {
	e := setup(t, 1, 2*time.Minute)
	c := e.h.Cluster.Client
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const evil = "\x1b]0;owned\a\x1b[2J\u009b31m\u202e\nFAKE LINE"
	must(c.CoreV1().ConfigMaps(harness.Namespace).Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: contract.ConfigMapName, Annotations: map[string]string{contract.AnnotationPaused: "true", contract.AnnotationPausedReason: "freeze" + evil}}},
		metav1.CreateOptions{}))
	event := func(ns, reason, msg string) *corev1.Event {
		now := metav1.Now()
		ref := corev1.ObjectReference{Kind: "Node", Name: "node-0", UID: "node-0"}
		if ns != metav1.NamespaceDefault {
			// The API server wants it in another namespace.
			ref.Namespace = ns
		}
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "node-0.", Namespace: ns},
			InvolvedObject: ref,
			Reason:         reason, Type: corev1.EventTypeWarning, Message: msg,
			Source:         corev1.EventSource{Component: contract.ControllerComponent},
			FirstTimestamp: now, LastTimestamp: now, Count: 1}
	}
	must(c.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant"}}, metav1.CreateOptions{}))
	must(c.CoreV1().Events("tenant").Create(e.ctx, event("tenant", contract.ReasonRebootBlocked, "forged elsewhere"), metav1.CreateOptions{}))
	must(c.CoreV1().Events(metav1.NamespaceDefault).Create(e.ctx, event(metav1.NamespaceDefault, contract.ReasonRebootBlocked, "blocked"+evil), metav1.CreateOptions{}))

	// The operator: a service account with the plugin's read rights.
	kubeconfig, _, err := e.h.Cluster.ServiceAccountKubeconfig(e.ctx, "ops", "operator")
	if err != nil {
		t.Fatal(err)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "ops", Name: "operator"}}
	must(c.RbacV1().ClusterRoles().Create(e.ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "plugin-nodes"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list"}}}}, metav1.CreateOptions{}))
	must(c.RbacV1().ClusterRoleBindings().Create(e.ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "plugin-nodes"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "plugin-nodes"}, Subjects: subject}, metav1.CreateOptions{}))
	role := func(ns, name, resource string) {
		must(c.RbacV1().Roles(ns).Create(e.ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{resource}, Verbs: []string{"get", "list"}}}}, metav1.CreateOptions{}))
		must(c.RbacV1().RoleBindings(ns).Create(e.ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}, Subjects: subject}, metav1.CreateOptions{}))
	}
	role(metav1.NamespaceDefault, "plugin-events", "events")
	role(harness.Namespace, "plugin-pause", "configmaps")

	var out string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last output of the plugin: %v\n%s", err, out)
		}
	})
	for _, args := range [][]string{{"status"}, {"history", "node-0"}} {
		e.eventually("kubectl-nodereboot "+strings.Join(args, " ")+" as the operator", 30*time.Second, func() bool {
			out, err = e.pluginAs(kubeconfig, args...)
			return err == nil
		})
		if i := strings.IndexFunc(out, func(r rune) bool { return r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) }); i >= 0 {
			t.Errorf("%v prints a control character at %d:\n%q", args, i, out)
		}
		if !strings.Contains(out, `blocked\x1b]0;owned\x07\x1b[2J\u009b31m\u202e FAKE LINE`) || strings.Contains(out, "\nFAKE LINE") {
			t.Errorf("%v does not show the event escaped on one line:\n%s", args, out)
		}
		if strings.Contains(out, "forged elsewhere") {
			t.Errorf("%v shows an event from outside namespace default:\n%s", args, out)
		}
		if args[0] == "status" && !strings.Contains(out, `Paused: yes (freeze\x1b]0;owned\x07\x1b[2J\u009b31m\u202e FAKE LINE)`) {
			t.Errorf("status does not show the pause reason escaped:\n%s", out)
		}
	}

	// The events Role is the privilege status needs.
	if err := c.RbacV1().RoleBindings(metav1.NamespaceDefault).Delete(e.ctx, "plugin-events", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("status refused without the events Role", 30*time.Second, func() bool {
		out, err = e.pluginAs(kubeconfig, "status")
		return err != nil
	})
	if !strings.Contains(out, "forbidden") || !strings.Contains(out, "events") {
		t.Errorf("status without the events Role: %v\n%s", err, out)
	}
}
