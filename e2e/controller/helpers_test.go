package controller_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/nodesim"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

const (
	systemNS       = "nodereboot-system"
	serviceAccount = "nodereboot-controller"
	workNS         = "work"
)

// Binaries built once by TestMain from this checkout.
var controllerBin, detectorBin, repoRoot string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := framework.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	bins, err := framework.BuildBinaries("", "nodereboot-controller", "nodereboot-detector")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer bins.Remove()
	controllerBin = bins.Path("nodereboot-controller")
	detectorBin = bins.Path("nodereboot-detector")
	return m.Run()
}

// env is one test's cluster with the controller's RBAC and a watcher that
// counts the nodes out at every node event.
type env struct {
	t          *testing.T
	c          *framework.Cluster
	ctx        context.Context
	kubeconfig string // the controller's service account
	// detectorKubeconfig is the detector's service account.
	detectorKubeconfig string
	out                *outCounter
	sims               map[string]*nodesim.Node
}

func setup(t *testing.T, nodes int, timeout time.Duration) *env {
	t.Helper()
	return setupWith(t, framework.Options{Nodes: nodes}, timeout)
}

// setupWith is setup with the cluster's options (an audit policy).
func setupWith(t *testing.T, opts framework.Options, timeout time.Duration) *env {
	t.Helper()
	start := time.Now()
	nodes := opts.Nodes
	if keep := os.Getenv("E2E_KEEP_DIR"); keep != "" {
		// Keep the logs of a passing run too, for reading.
		opts.Dir = filepath.Join(keep, t.Name())
	}
	c := framework.StartCluster(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	kc, _, err := c.ServiceAccountKubeconfig(ctx, systemNS, serviceAccount)
	if err != nil {
		t.Fatal(err)
	}
	detectorKC, _, err := c.ServiceAccountKubeconfig(ctx, systemNS, "nodereboot-detector")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"controller-clusterrole.yaml", "detector-clusterrole.yaml"} {
		if out, err := c.Kubectl(ctx, "apply", "-f", filepath.Join(repoRoot, "deploy", "rbac", f)); err != nil {
			t.Fatalf("apply RBAC %s: %v\n%s", f, err, out)
		}
	}
	e := &env{t: t, c: c, ctx: ctx, kubeconfig: kc, detectorKubeconfig: detectorKC, sims: map[string]*nodesim.Node{}}
	e.out = watchOut(t, ctx, c)
	t.Logf("cluster with %d nodes ready in %s", nodes, time.Since(start).Round(time.Millisecond))
	return e
}

func nodeName(i int) string { return "node-" + strconv.Itoa(i) }

// startHost starts the simulated host of a node with the real detector as
// its agent. With detection false the detector only reboots (the condition
// belongs to somebody else, e.g. node-problem-detector).
func (e *env) startHost(node string, detection bool) *nodesim.Node {
	e.t.Helper()
	sim := nodesim.Start(e.t, e.c, nodesim.Config{
		NodeName:    node,
		RebootDelay: time.Second,
		Agent: func(n *nodesim.Node) (string, []string) {
			return detectorBin, []string{
				"--kubeconfig=" + e.detectorKubeconfig,
				"--node-name=" + node,
				"--boot-id-file=" + n.BootIDFile(),
				"--sentinel=" + n.SentinelPath(),
				"--reboot-command=" + n.RebootCommand(),
				"--host-mount-namespace=false",
				"--detection=" + strconv.FormatBool(detection),
				"--metrics-bind-address=0",
				"--health-probe-bind-address=0",
				"-v=2",
			}
		},
	})
	e.sims[node] = sim
	return sim
}

// rebootsOf returns the reboots of a host that was expected to reboot: the
// host records a reboot a moment after its node is back (it starts its
// detector first), and the controller may have finished the node by then.
func (e *env) rebootsOf(node string) []nodesim.Reboot {
	e.t.Helper()
	r, err := e.sims[node].WaitForReboots(e.ctx, 1)
	if err != nil {
		e.t.Errorf("%s: %v", node, err)
	}
	return r
}

// controller is a running nodereboot-controller process.
type controller struct {
	*framework.Process
	metricsAddr string
}

// startController runs the controller binary with the service account's
// kubeconfig; args override the defaults.
func (e *env) startController(name string, args ...string) *controller {
	e.t.Helper()
	port := freePort(e.t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	all := append([]string{
		"--kubeconfig=" + e.kubeconfig,
		"--leader-elect-resource-namespace=" + systemNS,
		"--eviction-retry-delay=1s",
		"--metrics-bind-address=" + addr,
		"--health-probe-bind-address=" + addr,
		"-v=2",
	}, args...)
	p := framework.NewProcess(name, controllerBin, all, e.c.LogDir)
	if err := p.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		p.Stop(15 * time.Second)
		if e.t.Failed() {
			e.t.Logf("%s log: %s", name, p.LogFile)
		}
	})
	return &controller{Process: p, metricsAddr: addr}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// metric reads one sample of the controller's /metrics.
func (c *controller) metric(name string) (float64, error) {
	return framework.Metric(c.metricsAddr, name)
}

// probe returns the HTTP status of a GET of the controller's path.
func (c *controller) probe(path string) (int, error) {
	resp, err := http.Get("http://" + c.metricsAddr + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// outCounter watches the nodes and records, at every event, how many carry
// a state annotation (are "out"), and how often each one went out.
type outCounter struct {
	mu    sync.Mutex
	out   map[string]bool
	max   int
	takes map[string]int
	log   []string
}

func watchOut(t *testing.T, ctx context.Context, c *framework.Cluster) *outCounter {
	o := &outCounter{out: map[string]bool{}, takes: map[string]int{}}
	observe := func(obj any) {
		n, ok := obj.(*corev1.Node)
		if !ok {
			return
		}
		state, isOut := n.Annotations[contract.AnnotationState]
		o.mu.Lock()
		defer o.mu.Unlock()
		if isOut && !o.out[n.Name] {
			o.takes[n.Name]++
		}
		o.out[n.Name] = isOut
		count := 0
		var names []string
		for name, out := range o.out {
			if out {
				count++
				names = append(names, name)
			}
		}
		sort.Strings(names)
		if count > o.max {
			o.max = count
		}
		o.log = append(o.log, fmt.Sprintf("%s %s state=%q out=%v", time.Now().Format("15:04:05.000"), n.Name, state, names))
	}
	watchNodes(t, ctx, c, cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, n any) { observe(n) },
		DeleteFunc: func(obj any) {
			if n, ok := obj.(*corev1.Node); ok {
				o.mu.Lock()
				delete(o.out, n.Name)
				o.mu.Unlock()
			}
		},
	}, func() string {
		o.mu.Lock()
		defer o.mu.Unlock()
		return "node state timeline:\n" + strings.Join(o.log, "\n")
	})
	return o
}

// watchNodes runs an informer on the Nodes with the handler until the test
// ends, and returns once its cache is synced. When the test failed,
// timeline is logged at the end.
func watchNodes(t *testing.T, ctx context.Context, c *framework.Cluster, h cache.ResourceEventHandler, timeline func() string) {
	t.Helper()
	lw := framework.ConsistentListWatch(c.Client.CoreV1().RESTClient(), "nodes", "", fields.Everything())
	inf := cache.NewSharedIndexInformer(lw, &corev1.Node{}, 0, cache.Indexers{})
	_, _ = inf.AddEventHandler(h)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); inf.RunWithContext(wctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Log(timeline())
		}
	})
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("node watch not synced")
	}
}

func (o *outCounter) Max() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.max
}

func (o *outCounter) Takes(node string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.takes[node]
}

// rebootDone: the pipeline ended with a completed reboot.
func rebootDone(n *corev1.Node) bool {
	_, out := n.Annotations[contract.AnnotationState]
	return !out && n.Annotations[contract.AnnotationLastReboot] != ""
}

func inState(s contract.State) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool { return n.Annotations[contract.AnnotationState] == string(s) }
}

func (e *env) waitNode(name string, cond func(*corev1.Node) bool, what string) *corev1.Node {
	e.t.Helper()
	n, err := e.c.WaitForNode(e.ctx, name, cond)
	if err != nil {
		e.t.Fatalf("node %s: %s: %v", name, what, err)
	}
	return n
}

// waitEvent waits for an event on a node with the given reason and returns
// it.
func (e *env) waitEvent(node, reason string) *corev1.Event {
	e.t.Helper()
	sel := fields.Set{"involvedObject.kind": "Node", "involvedObject.name": node, "reason": reason}.AsSelector()
	lw := framework.ConsistentListWatch(e.c.Client.CoreV1().RESTClient(), "events", metav1.NamespaceDefault, sel)
	ev, err := watchtools.UntilWithSync(e.ctx, lw, &corev1.Event{}, nil, func(ev watch.Event) (bool, error) {
		return ev.Type == watch.Added || ev.Type == watch.Modified, nil
	})
	if err != nil {
		e.t.Fatalf("no %s event on %s: %v", reason, node, err)
	}
	return ev.Object.(*corev1.Event)
}

// events lists the reasons of the controller's events on a node, oldest
// first.
func (e *env) events(node string) []string {
	e.t.Helper()
	list, err := e.c.Client.CoreV1().Events(metav1.NamespaceDefault).List(e.ctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.name": node, "source": contract.ControllerComponent}.AsSelector().String()})
	if err != nil {
		e.t.Fatal(err)
	}
	sort.SliceStable(list.Items, func(i, j int) bool {
		return list.Items[i].FirstTimestamp.Before(&list.Items[j].FirstTimestamp)
	})
	var reasons []string
	for _, ev := range list.Items {
		reasons = append(reasons, ev.Reason)
	}
	return reasons
}

// waitLeaseHolder waits until the controller's Lease is held by somebody
// other than notHolder and returns the holder.
func (e *env) waitLeaseHolder(notHolder string) string {
	e.t.Helper()
	lw := framework.ConsistentListWatch(e.c.Client.CoordinationV1().RESTClient(), "leases", systemNS,
		fields.OneTermEqualSelector("metadata.name", "nodereboot-controller"))
	ev, err := watchtools.UntilWithSync(e.ctx, lw, &coordinationv1.Lease{}, nil, func(ev watch.Event) (bool, error) {
		l, ok := ev.Object.(*coordinationv1.Lease)
		if !ok || l.Spec.HolderIdentity == nil {
			return false, nil
		}
		h := *l.Spec.HolderIdentity
		return h != "" && h != notHolder, nil
	})
	if err != nil {
		e.t.Fatalf("lease holder: %v", err)
	}
	return *ev.Object.(*coordinationv1.Lease).Spec.HolderIdentity
}

// deployWorkload creates a Deployment whose pods tolerate no taint of a
// cordon, with a PodDisruptionBudget, and waits until all replicas are
// available.
func (e *env) deployWorkload(name string, replicas int32, nodeSelector map[string]string, pdb policyv1.PodDisruptionBudgetSpec) {
	e.t.Helper()
	ctx, client := e.ctx, e.c.Client
	if _, err := client.CoreV1().Namespaces().Get(ctx, workNS, metav1.GetOptions{}); err != nil {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: workNS}}, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
	labels := map[string]string{"app": name}
	if nodeSelector == nil {
		nodeSelector = map[string]string{"type": "kwok"}
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: workNS},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:   []corev1.Container{{Name: name, Image: "registry.k8s.io/pause:3.10"}},
					NodeSelector: nodeSelector,
					// Spread the replicas so that every node has some.
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(workNS).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	pdb.Selector = &metav1.LabelSelector{MatchLabels: labels}
	if _, err := client.PolicyV1().PodDisruptionBudgets(workNS).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: workNS}, Spec: pdb}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.waitAvailable(name, replicas)
}

func (e *env) waitAvailable(name string, replicas int32) {
	e.t.Helper()
	lw := framework.ConsistentListWatch(e.c.Client.AppsV1().RESTClient(), "deployments", workNS, fields.OneTermEqualSelector("metadata.name", name))
	_, err := watchtools.UntilWithSync(e.ctx, lw, &appsv1.Deployment{}, nil, func(ev watch.Event) (bool, error) {
		d, ok := ev.Object.(*appsv1.Deployment)
		return ok && d.Status.AvailableReplicas == replicas && d.Status.UpdatedReplicas == replicas && d.Status.Replicas == replicas, nil
	})
	if err != nil {
		e.t.Fatalf("deployment %s not available with %d replicas: %v", name, replicas, err)
	}
}

// podsOn returns the names of the workload pods on a node.
func (e *env) podsOn(node string) []string {
	e.t.Helper()
	list, err := e.c.Client.CoreV1().Pods(workNS).List(e.ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	return names
}

func maxUnavailable(n int) policyv1.PodDisruptionBudgetSpec {
	v := intstr.FromInt32(int32(n))
	return policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &v}
}

func minAvailable(n int) policyv1.PodDisruptionBudgetSpec {
	v := intstr.FromInt32(int32(n))
	return policyv1.PodDisruptionBudgetSpec{MinAvailable: &v}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
