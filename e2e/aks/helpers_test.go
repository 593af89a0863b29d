package aks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/nodesim"
	"github.com/nodereboot/nodereboot/pkg/contract"
	copts "github.com/nodereboot/nodereboot/pkg/controller/options"
	dopts "github.com/nodereboot/nodereboot/pkg/detector/options"
)

const systemNS = "nodereboot-system"

// flagName is the name of a --name=value argument ("" if it is not one).
func flagName(arg string) string {
	if !strings.HasPrefix(arg, "--") {
		return ""
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
	return name
}

// without returns args without the flags named.
func without(args []string, names ...string) []string {
	var out []string
	for _, a := range args {
		drop := false
		for _, n := range names {
			drop = drop || flagName(a) == n
		}
		if !drop {
			out = append(out, a)
		}
	}
	return out
}

// flagValue is the value of the last --name=value in args, and whether
// there is one.
func flagValue(args []string, name string) (string, bool) {
	v, ok := "", false
	for _, a := range args {
		if flagName(a) == name {
			_, v, _ = strings.Cut(a, "=")
			ok = true
		}
	}
	return v, ok
}

// host is a simulated Linux host: the files AKS's node would have where the
// detector looks for them, and the node simulator.
type host struct {
	name, dir string
	pool      Pool
	sim       *nodesim.Node
	// reboots counts the reboots of the simulators stopped before sim.
	reboots int
}

// rebootCount is the number of reboots of the host since the test began.
func (h *host) rebootCount() int {
	n := h.reboots
	if h.sim != nil {
		n += len(h.sim.Reboots())
	}
	return n
}

// etcDebianVersion and needsRestarting are the host's /etc/debian_version
// (present on Ubuntu) and a stand-in `needs-restarting` (Azure Linux): it
// exits 1 (reboot needed) while the file patched-boot-id holds the current
// boot ID — dnf installed a kernel during this boot — and 0 after a reboot.
func (h *host) etcDebianVersion() string { return filepath.Join(h.dir, "etc", "debian_version") }
func (h *host) needsRestarting() string {
	return filepath.Join(h.dir, "usr", "bin", "needs-restarting")
}
func (h *host) patchedBootID() string { return filepath.Join(h.dir, "patched-boot-id") }

func (h *host) prepare() error {
	for _, d := range []string{filepath.Dir(h.etcDebianVersion()), filepath.Dir(h.needsRestarting())} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if h.pool.OSSKU == "AzureLinux" {
		script := fmt.Sprintf("#!/bin/sh\n# needs-restarting -r, as dnf: 1 = reboot needed, 0 = not\n[ \"$(cat %s 2>/dev/null)\" = \"$(cat %s)\" ] && exit 1\nexit 0\n",
			h.patchedBootID(), filepath.Join(h.dir, "boot_id"))
		return os.WriteFile(h.needsRestarting(), []byte(script), 0o755)
	}
	return os.WriteFile(h.etcDebianVersion(), []byte("trixie/sid\n"), 0o644)
}

// patchKernel is dnf-automatic installing a kernel: needs-restarting says
// "reboot needed" until the next boot.
func (h *host) patchKernel() error {
	return os.WriteFile(h.patchedBootID(), []byte(h.sim.BootID()), 0o644)
}

// detectorArgs are the installed DaemonSet's arguments as the detector runs
// them on this simulated host: the host's paths mapped into its folder
// (the sentinel, the boot ID, /etc/debian_version and needs-restarting in
// the sentinel command), "reboot" mapped to the simulator's reboot request,
// no nsenter (the command runs in the host's namespace already), the
// service account's kubeconfig, no listeners, and a 1s command period.
func (h *host) detectorArgs(n *nodesim.Node, installed []string, kubeconfig string) []string {
	args := without(installed, "sentinel", "boot-id-file", "reboot-command", "host-mount-namespace", "dbus-socket",
		"kubeconfig", "metrics-bind-address", "health-probe-bind-address", "sentinel-command-period", "sentinel-command")
	if cmd, ok := flagValue(installed, "sentinel-command"); ok && cmd != "" {
		cmd = strings.NewReplacer(
			"/var/run/reboot-required", n.SentinelPath(),
			"/etc/debian_version", h.etcDebianVersion(),
			"needs-restarting -r", h.needsRestarting()+" -r",
		).Replace(cmd)
		args = append(args, "--sentinel-command="+cmd, "--sentinel-command-period=1s")
	}
	return append(args,
		"--sentinel="+n.SentinelPath(),
		"--boot-id-file="+n.BootIDFile(),
		"--reboot-command="+n.RebootCommand(),
		"--host-mount-namespace=false",
		"--kubeconfig="+kubeconfig,
		"--node-name="+n.Name(),
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
	)
}

// start starts the host with a detector run with the installed arguments.
func (h *host) start(ctx context.Context, c *framework.Cluster, binDir string, installed []string, kubeconfig string) error {
	sim, err := nodesim.New(ctx, c.Client, nodesim.Config{
		NodeName:    h.name,
		Dir:         h.dir,
		RebootDelay: time.Second,
		LogDir:      c.LogDir,
		Agent: func(n *nodesim.Node) (string, []string) {
			return filepath.Join(binDir, "nodereboot-detector"), h.detectorArgs(n, installed, kubeconfig)
		},
	})
	h.sim = sim
	return err
}

func (h *host) stop() {
	if h.sim != nil {
		h.sim.Stop()
		h.reboots += len(h.sim.Reboots())
		h.sim = nil
	}
}

// observer records what happens to the nodes, from a node informer.
type observer struct {
	mu sync.Mutex
	// out is the set of nodes with a nodereboot.io/state; maxOut its
	// largest size.
	out    map[string]bool
	maxOut int
	// touched: nodes that were ever cordoned or carried a nodereboot.io/
	// annotation (other than reboot-requested, which a user writes).
	touched map[string]bool
	// protected: nodes seen with the autoscaler's scale-down-disabled
	// annotation while in the pipeline.
	protected map[string]bool
}

func observe(ctx context.Context, t *testing.T, c *framework.Cluster) *observer {
	o := &observer{out: map[string]bool{}, touched: map[string]bool{}, protected: map[string]bool{}}
	f := informers.NewSharedInformerFactory(c.Client, 0)
	inf := f.Core().V1().Nodes().Informer()
	update := func(obj any) {
		n, ok := obj.(*corev1.Node)
		if !ok {
			return
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		_, inPipeline := n.Annotations[contract.AnnotationState]
		if inPipeline {
			o.out[n.Name] = true
			if n.Annotations[contract.AnnotationScaleDownDisabled] == "true" {
				o.protected[n.Name] = true
			}
		} else {
			delete(o.out, n.Name)
		}
		o.maxOut = max(o.maxOut, len(o.out))
		if n.Spec.Unschedulable {
			o.touched[n.Name] = true
		}
		for k := range n.Annotations {
			if strings.HasPrefix(k, contract.Prefix) && k != contract.AnnotationRebootRequested {
				o.touched[n.Name] = true
			}
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, n any) { update(n) },
	}); err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	return o
}

func (o *observer) snapshot() (maxOut int, touched, protected map[string]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	cp := func(m map[string]bool) map[string]bool {
		out := map[string]bool{}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return o.maxOut, cp(o.touched), cp(o.protected)
}

// idle reports whether a node is out of the pipeline and schedulable.
func idle(n *corev1.Node) bool {
	_, out := n.Annotations[contract.AnnotationState]
	return !out && !n.Spec.Unschedulable
}

// idleButCordoned reports whether a node is out of the pipeline and
// cordoned (by somebody else).
func idleButCordoned(n *corev1.Node) bool {
	_, out := n.Annotations[contract.AnnotationState]
	return !out && n.Spec.Unschedulable
}

// waitEvent waits for an event with the reason about the node.
func waitEvent(ctx context.Context, c *framework.Cluster, node, reason string) error {
	sel := fields.AndSelectors(
		fields.OneTermEqualSelector("involvedObject.kind", "Node"),
		fields.OneTermEqualSelector("involvedObject.name", node),
		fields.OneTermEqualSelector("reason", reason))
	lw := framework.ConsistentListWatch(c.Client.CoreV1().RESTClient(), "events", "", sel)
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Event{}, nil, func(e watch.Event) (bool, error) {
		return e.Type != watch.Deleted, nil
	})
	if err != nil {
		return fmt.Errorf("no %s event for %s: %w", reason, node, err)
	}
	return nil
}

// condition returns the node's RebootRequired condition, or nil.
func condition(n *corev1.Node) *corev1.NodeCondition {
	for i, c := range n.Status.Conditions {
		if string(c.Type) == contract.DefaultConditionType {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// conditionReason waits for the node's condition to have the status and
// reason.
func conditionReason(status corev1.ConditionStatus, reason string) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool {
		c := condition(n)
		return c != nil && c.Status == status && c.Reason == reason
	}
}

// spread is a Deployment with one replica per node (required anti-affinity)
// on the nodes the selector picks, and a budget allowing one disruption:
// draining a node leaves its replica Pending until the node is back.
func spread(ctx context.Context, c *framework.Cluster, ns, name string, replicas int32, selector map[string]string, tolerations []corev1.Toleration) error {
	labels := map[string]string{"app": name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:   []corev1.Container{{Name: name, Image: "registry.k8s.io/pause:3.10"}},
					NodeSelector: selector,
					Tolerations:  tolerations,
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							TopologyKey:   "kubernetes.io/hostname",
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
						}},
					}},
				},
			},
		},
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return err
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	if _, err := c.Client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := framework.WaitFor(ctx, c.Client.PolicyV1().RESTClient(), "poddisruptionbudgets", ns, name, &policyv1.PodDisruptionBudget{}, func(o any) bool {
		p := o.(*policyv1.PodDisruptionBudget)
		return p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy == replicas
	})
	return err
}

// parseDetector parses and validates a detector's args with its own flags.
func parseDetector(t *testing.T, args []string) *dopts.Options {
	t.Helper()
	o := dopts.New()
	o.NodeName = "aks-nodepool1-12345678-vmss000000"
	fs := framework.BinaryFlagSet("nodereboot-detector", o.AddFlags)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		t.Fatalf("detector args %q: %v %q", args, err, fs.Args())
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("detector args %q: %v", args, err)
	}
	return o
}

// parseController parses and validates a controller's args.
func parseController(t *testing.T, args []string) *copts.Options {
	t.Helper()
	o := copts.New(func(k string) string {
		if k == "POD_NAMESPACE" {
			return systemNS
		}
		return ""
	})
	fs := framework.BinaryFlagSet("nodereboot-controller", o.AddFlags)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		t.Fatalf("controller args %q: %v %q", args, err, fs.Args())
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("controller args %q: %v", args, err)
	}
	return o
}

// podTokenKubeconfig writes a kubeconfig with a token of the detector's
// service account bound to the detector pod on the node — the token the
// kubelet projects into that pod, which names the node, as the admission
// policy nodereboot-detector-own-node requires.
func podTokenKubeconfig(ctx context.Context, t *testing.T, c *framework.Cluster, node string) string {
	t.Helper()
	pods, err := c.Client.CoreV1().Pods(systemNS).List(ctx, metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/component=detector",
		FieldSelector: "spec.nodeName=" + node,
	})
	if err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil {
			pod = &pods.Items[i]
		}
	}
	if pod == nil {
		t.Fatalf("no detector pod on %s", node)
	}
	tr, err := c.Client.CoreV1().ServiceAccounts(systemNS).CreateToken(ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
			ExpirationSeconds: ptr.To[int64](3600),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["detector"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "detector"}
	cfg.CurrentContext = "local"
	path := filepath.Join(c.Dir, pod.Name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
