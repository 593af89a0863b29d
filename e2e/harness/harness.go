package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/nodesim"
	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/detector"
	"github.com/nodereboot/nodereboot/pkg/detector/options"
	"github.com/nodereboot/nodereboot/pkg/kubeclient"
)

// Namespace is where the binaries' service accounts and the leader-election
// Lease live, as in deploy/.
const Namespace = "nodereboot-system"

// Service accounts, as in deploy/rbac.
const (
	DetectorServiceAccount   = "nodereboot-detector"
	ControllerServiceAccount = "nodereboot-controller"
)

// Workload is a Deployment spread over the nodes with a PodDisruptionBudget.
type Workload struct {
	Namespace      string // default "demo"
	Name           string // default "web"
	Replicas       int32
	MaxUnavailable int32 // of the PodDisruptionBudget; default 1
}

// Config says what to start.
type Config struct {
	Cluster framework.Options
	// RebootDelay is how long a simulated reboot keeps a node down.
	RebootDelay time.Duration
	// Detectors starts a nodereboot-detector on every node.
	Detectors bool
	// InProcessDetectors runs the detectors as goroutines of this process
	// (the same code as the binary, one client each) instead of processes:
	// for benchmarks with hundreds of nodes. Needs Detectors.
	InProcessDetectors bool
	// DetectorArgs are extra flags for every detector.
	DetectorArgs []string
	// GatedReboots gives the detectors nodesim's GatedRebootCommand, so that
	// a test can hold a reboot request (nodesim.Node.ArmRebootGate).
	GatedReboots bool
	// ControllerReplicas controller processes are started (0: none).
	ControllerReplicas int
	// ControllerArgs are extra flags for every controller replica.
	ControllerArgs []string
	// Workload, when set, is created and waited for before Start returns.
	Workload *Workload
}

// Harness is nodereboot installed on a local cluster.
type Harness struct {
	Cluster *framework.Cluster
	// Nodes are the simulated hosts in node order.
	Nodes []*nodesim.Node
	// Controllers are the controller replicas.
	Controllers []*framework.Process
	// Kubeconfigs of the binaries' service accounts.
	DetectorKubeconfig, ControllerKubeconfig string

	cfg      Config
	requests *nodesim.RequestWatcher // one inotify instance for every host
}

// Setup starts a harness for a test and stops it when the test ends.
func Setup(t testing.TB, cfg Config) *Harness {
	t.Helper()
	if cfg.Cluster.Logf == nil {
		cfg.Cluster.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h, err := Start(ctx, cfg)
	if h != nil {
		t.Cleanup(func() {
			h.Stop()
			if t.Failed() {
				t.Logf("logs kept in %s", h.Cluster.LogDir)
				return
			}
			h.Cluster.Remove()
		})
	}
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return h
}

// Start starts the cluster and everything cfg asks for. On an error the
// returned Harness (if not nil) must still be stopped.
func Start(ctx context.Context, cfg Config) (*Harness, error) {
	c, err := framework.Start(ctx, cfg.Cluster)
	h := &Harness{Cluster: c, cfg: cfg}
	if c == nil {
		return nil, err
	}
	if err != nil {
		return h, err
	}
	if err := h.install(ctx); err != nil {
		return h, err
	}
	if cfg.Workload != nil {
		if err := h.CreateWorkload(ctx, *cfg.Workload); err != nil {
			return h, err
		}
	}
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return h, err
	}
	for _, n := range nodes.Items {
		if _, err := h.AddHost(ctx, n.Name); err != nil {
			return h, err
		}
	}
	for range cfg.ControllerReplicas {
		if _, err := h.StartController(); err != nil {
			return h, err
		}
	}
	return h, nil
}

// install applies deploy/rbac and mints the service-account kubeconfigs.
func (h *Harness) install(ctx context.Context) error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	c := h.Cluster
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := c.Kubectl(ctx, "apply", "--server-side", "-f", filepath.Join(root, "deploy", "rbac")); err != nil {
		return err
	}
	if h.DetectorKubeconfig, _, err = c.ServiceAccountKubeconfig(ctx, Namespace, DetectorServiceAccount); err != nil {
		return err
	}
	if h.ControllerKubeconfig, _, err = c.ServiceAccountKubeconfig(ctx, Namespace, ControllerServiceAccount); err != nil {
		return err
	}
	return nil
}

// AddHost starts a node simulator for an existing node, with a detector
// when the config asks for detectors.
func (h *Harness) AddHost(ctx context.Context, node string) (*nodesim.Node, error) {
	dir := filepath.Join(h.Cluster.Dir, "hosts", node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if h.requests == nil {
		r, err := nodesim.NewRequestWatcher()
		if err != nil {
			return nil, err
		}
		h.requests = r
	}
	simCfg := nodesim.Config{NodeName: node, Dir: dir, RebootDelay: h.cfg.RebootDelay, LogDir: h.Cluster.LogDir, Requests: h.requests}
	switch {
	case h.cfg.Detectors && h.cfg.InProcessDetectors:
		simCfg.InProcessAgent = h.runDetector
	case h.cfg.Detectors:
		simCfg.Agent = h.detectorCommand
	}
	sim, err := nodesim.New(ctx, h.Cluster.Client, simCfg)
	if err != nil {
		return nil, err
	}
	h.Nodes = append(h.Nodes, sim)
	return sim, nil
}

// runDetector runs the detector's code in this process until ctx ends.
func (h *Harness) runDetector(ctx context.Context, n *nodesim.Node) {
	_, args := h.detectorCommand(n)
	o := options.New()
	fs := pflag.NewFlagSet("detector", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "in-process detector %s: %v\n", n.Name(), err)
		return
	}
	c, err := o.Complete()
	if err != nil {
		fmt.Fprintf(os.Stderr, "in-process detector %s: %v\n", n.Name(), err)
		return
	}
	cfg, err := c.RESTConfig()
	if err == nil {
		var client *kubeclient.Client
		if client, err = kubeclient.New(cfg, contract.DetectorComponent); err == nil {
			var d *detector.Detector
			dc := c.Detector
			dc.Client = client
			if d, err = detector.New(dc); err == nil {
				err = d.Run(ctx)
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "in-process detector %s: %v\n", n.Name(), err)
	}
}

func (h *Harness) detectorCommand(n *nodesim.Node) (string, []string) {
	rebootCommand := n.RebootCommand()
	if h.cfg.GatedReboots {
		rebootCommand = n.GatedRebootCommand()
	}
	args := []string{
		"--kubeconfig=" + h.DetectorKubeconfig,
		"--node-name=" + n.Name(),
		"--sentinel=" + n.SentinelPath(),
		"--boot-id-file=" + n.BootIDFile(),
		"--reboot-method=command",
		"--reboot-command=" + rebootCommand,
		"--host-mount-namespace=false",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
	}
	return filepath.Join(h.Cluster.BinDir, "nodereboot-detector"), append(args, h.cfg.DetectorArgs...)
}

// Node returns the simulated host of a node, or nil.
func (h *Harness) Node(name string) *nodesim.Node {
	for _, n := range h.Nodes {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// StartController starts one more controller replica.
func (h *Harness) StartController() (*framework.Process, error) {
	i := len(h.Controllers)
	args := []string{
		"--kubeconfig=" + h.ControllerKubeconfig,
		"--leader-elect-resource-namespace=" + Namespace,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
	}
	p := framework.NewProcess("controller-"+strconv.Itoa(i), filepath.Join(h.Cluster.BinDir, "nodereboot-controller"), append(args, h.cfg.ControllerArgs...), h.Cluster.LogDir)
	if err := p.Start(); err != nil {
		return nil, err
	}
	h.Controllers = append(h.Controllers, p)
	return p, nil
}

// LeaderProcess waits until a running controller replica holds the
// leader-election Lease and returns it. The replica is the one whose current
// run logged "Started leading" with the lease holder's identity (a standby
// logs the leader's identity too, in "New leader").
func (h *Harness) LeaderProcess(ctx context.Context) (*framework.Process, error) {
	var found *framework.Process
	_, err := framework.WaitFor(ctx, h.Cluster.Client.CoordinationV1().RESTClient(), "leases", Namespace, "nodereboot-controller", &coordinationv1.Lease{}, func(o any) bool {
		l := o.(*coordinationv1.Lease)
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			return false
		}
		found = h.controllerWithIdentity(*l.Spec.HolderIdentity)
		return found != nil
	})
	if err != nil {
		return nil, fmt.Errorf("leader: %w", err)
	}
	return found, nil
}

// controllerWithIdentity is the running replica whose current run logged
// the identity, or nil.
func (h *Harness) controllerWithIdentity(id string) *framework.Process {
	for _, p := range h.Controllers {
		if !p.Running() {
			continue
		}
		b, err := os.ReadFile(p.LogFile)
		if err != nil {
			continue
		}
		// The log is appended across restarts: only the current run counts.
		if i := bytes.LastIndex(b, []byte("==== ")); i >= 0 {
			b = b[i:]
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if bytes.Contains(line, []byte(`"Started leading"`)) && bytes.Contains(line, []byte(`identity="`+id+`"`)) {
				return p
			}
		}
	}
	return nil
}

// Stop stops the controllers, the hosts and their detectors, and the cluster.
func (h *Harness) Stop() {
	for _, p := range h.Controllers {
		p.Stop(10 * time.Second)
	}
	for _, n := range h.Nodes {
		n.Stop()
	}
	if h.requests != nil {
		h.requests.Close()
	}
	if h.Cluster != nil {
		h.Cluster.Stop()
	}
}

// CreateWorkload creates a Deployment spread over the nodes (it does not
// tolerate the unschedulable taint, so drained pods move) and its
// PodDisruptionBudget, and waits until every replica is ready and the budget
// allows a disruption.
func (h *Harness) CreateWorkload(ctx context.Context, w Workload) error {
	if w.Namespace == "" {
		w.Namespace = "demo"
	}
	if w.Name == "" {
		w.Name = "web"
	}
	if w.MaxUnavailable == 0 {
		w.MaxUnavailable = 1
	}
	c := h.Cluster.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	labels := map[string]string{"app": w.Name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: w.Name, Namespace: w.Namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(w.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:   []corev1.Container{{Name: w.Name, Image: "registry.k8s.io/pause:3.10"}},
					NodeSelector: map[string]string{"type": "kwok"},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew:           1,
						TopologyKey:       "kubernetes.io/hostname",
						WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector:     &metav1.LabelSelector{MatchLabels: labels},
					}},
				},
			},
		},
	}
	if _, err := c.AppsV1().Deployments(w.Namespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return err
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: w.Name, Namespace: w.Namespace},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(w.MaxUnavailable)),
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	if _, err := c.PolicyV1().PodDisruptionBudgets(w.Namespace).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		return err
	}
	return h.WaitForWorkload(ctx, w)
}

// WaitForWorkload waits until the workload's budget sees every replica
// healthy.
func (h *Harness) WaitForWorkload(ctx context.Context, w Workload) error {
	if w.Namespace == "" {
		w.Namespace = "demo"
	}
	if w.Name == "" {
		w.Name = "web"
	}
	_, err := framework.WaitFor(ctx, h.Cluster.Client.PolicyV1().RESTClient(), "poddisruptionbudgets", w.Namespace, w.Name, &policyv1.PodDisruptionBudget{}, func(o any) bool {
		pdb := o.(*policyv1.PodDisruptionBudget)
		return pdb.Status.ObservedGeneration == pdb.Generation && pdb.Status.CurrentHealthy == w.Replicas && pdb.Status.ExpectedPods == w.Replicas
	})
	if err != nil {
		return fmt.Errorf("workload %s/%s: %w", w.Namespace, w.Name, err)
	}
	return nil
}
