package gates_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

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
	for _, want := range []string{"Paused: no", "NODE REBOOTREQUIRED SINCE STATE SINCE LAST REBOOT BLOCKED", "node-0 False", "node-1 False"} {
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
