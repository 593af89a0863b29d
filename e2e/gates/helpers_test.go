package gates_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/harness"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// binDir holds this checkout's binaries (built by TestMain) next to links
// to the control plane's; the harness runs everything from it.
var binDir string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	bins, err := framework.BuildBinaries("", "nodereboot-controller", "nodereboot-detector", "kubectl-nodereboot")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer bins.Remove()
	binDir = bins.Dir
	os.Setenv("NODEREBOOT_BIN_DIR", binDir)
	return m.Run()
}

// env is one test's nodereboot installation with its detectors, without a
// controller (each test starts its own with its gate flags).
type env struct {
	t   *testing.T
	h   *harness.Harness
	ctx context.Context
}

func setup(t *testing.T, nodes int, timeout time.Duration) *env {
	t.Helper()
	start := time.Now()
	opts := framework.Options{Nodes: nodes}
	if keep := os.Getenv("E2E_KEEP_DIR"); keep != "" {
		opts.Dir = filepath.Join(keep, t.Name())
	}
	h := harness.Setup(t, harness.Config{Cluster: opts, Detectors: true, RebootDelay: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	t.Logf("nodereboot on %d nodes ready in %s", nodes, time.Since(start).Round(time.Millisecond))
	return &env{t: t, h: h, ctx: ctx}
}

// controller is a running controller with its metrics address.
type controller struct {
	*framework.Process
	addr string
}

// startController runs the controller as its service account with the
// given extra flags.
func (e *env) startController(name string, args ...string) *controller {
	e.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	all := append([]string{
		"--kubeconfig=" + e.h.ControllerKubeconfig,
		"--leader-elect-resource-namespace=" + harness.Namespace,
		"--eviction-retry-delay=1s",
		"--metrics-bind-address=" + addr,
		"--health-probe-bind-address=" + addr,
		"-v=2",
	}, args...)
	p := framework.NewProcess(name, filepath.Join(binDir, "nodereboot-controller"), all, e.h.Cluster.LogDir)
	if err := p.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		p.Stop(15 * time.Second)
		if e.t.Failed() {
			e.t.Logf("%s log: %s", name, p.LogFile)
		}
	})
	return &controller{Process: p, addr: addr}
}

// metric reads one sample of the controller's /metrics, e.g.
// `nodereboot_reboot_blocked{reason="Paused"}`.
func (c *controller) metric(sample string) (float64, error) {
	return framework.Metric(c.addr, sample)
}

func (e *env) request(node string) {
	e.t.Helper()
	if err := e.h.Node(node).CreateSentinel(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) waitNode(name string, cond func(*corev1.Node) bool, what string) *corev1.Node {
	e.t.Helper()
	n, err := e.h.Cluster.WaitForNode(e.ctx, name, cond)
	if err != nil {
		e.t.Fatalf("node %s: %s: %v", name, what, err)
	}
	return n
}

// out: the node is in the pipeline.
func out(n *corev1.Node) bool {
	_, ok := n.Annotations[contract.AnnotationState]
	return ok
}

// rebootDone: the pipeline ended with a completed reboot.
func rebootDone(n *corev1.Node) bool {
	return !out(n) && n.Annotations[contract.AnnotationLastReboot] != ""
}

// conditionTrue: the detector reports the reboot condition True.
func conditionTrue(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if string(c.Type) == contract.DefaultConditionType {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitEvent waits for a controller event on a node with the reason and a
// message containing every substring, and returns it.
func (e *env) waitEvent(node, reason string, subs ...string) *corev1.Event {
	e.t.Helper()
	sel := fields.Set{"involvedObject.kind": "Node", "involvedObject.name": node, "reason": reason}.AsSelector()
	lw := framework.ConsistentListWatch(e.h.Cluster.Client.CoreV1().RESTClient(), "events", metav1.NamespaceDefault, sel)
	ev, err := watchtools.UntilWithSync(e.ctx, lw, &corev1.Event{}, nil, func(ev watch.Event) (bool, error) {
		x, ok := ev.Object.(*corev1.Event)
		if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
			return false, nil
		}
		for _, s := range subs {
			if !strings.Contains(x.Message, s) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		e.t.Fatalf("no %s event on %s with %q: %v", reason, node, subs, err)
	}
	return ev.Object.(*corev1.Event)
}

// pinWorkload runs replicas pods on one node with a budget that refuses
// every eviction until deleted: the node's drain is held up.
func (e *env) pinWorkload(name, node string, replicas int32) {
	e.t.Helper()
	c := e.h.Cluster.Client
	ns := "work"
	if _, err := c.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		e.t.Fatal(err)
	}
	labels := map[string]string{"app": name}
	for i := range replicas {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%d", name, i), Labels: labels},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}},
				Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}},
		}
		if _, err := c.CoreV1().Pods(ns).Create(e.ctx, p, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
	v := intstr.FromInt32(replicas)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &v, Selector: &metav1.LabelSelector{MatchLabels: labels}}}
	if _, err := c.PolicyV1().PodDisruptionBudgets(ns).Create(e.ctx, pdb, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := framework.WaitFor(e.ctx, c.PolicyV1().RESTClient(), "poddisruptionbudgets", ns, name, &policyv1.PodDisruptionBudget{}, func(o any) bool {
		p := o.(*policyv1.PodDisruptionBudget)
		return p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy == replicas
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) deletePDB(name string) {
	e.t.Helper()
	if err := e.h.Cluster.Client.PolicyV1().PodDisruptionBudgets("work").Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// createPod creates a running pod with labels on a node.
func (e *env) createPod(ns, name, node string, labels map[string]string) {
	e.t.Helper()
	c := e.h.Cluster.Client
	if _, err := c.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		e.t.Fatal(err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}},
			TerminationGracePeriodSeconds: ptr.To[int64](0)},
	}
	if _, err := c.CoreV1().Pods(ns).Create(e.ctx, p, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := framework.WaitFor(e.ctx, c.CoreV1().RESTClient(), "pods", ns, name, &corev1.Pod{}, func(o any) bool {
		return o.(*corev1.Pod).Status.Phase == corev1.PodRunning
	}); err != nil {
		e.t.Fatal(err)
	}
}
