package aks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// binDir holds this checkout's binaries next to links to the control plane's
// tools and to Helm: the session's PATH.
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
	return m.Run()
}

// helmBinary is $NODEREBOOT_HELM or bin/helm (make helm).
func helmBinary(t *testing.T) string {
	if p := os.Getenv("NODEREBOOT_HELM"); p != "" {
		return p
	}
	d, err := framework.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d, "helm")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: run `make helm` first (or set NODEREBOOT_HELM)", p)
	}
	return p
}

// TestWalkthrough runs docs/aks.md on a cluster with AKS's node pools: every
// marked command, in the page's story order, and checks what the page says
// each does.
func TestWalkthrough(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseBlocks(filepath.Join(root, "docs", "aks.md"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(helmBinary(t), filepath.Join(binDir, "helm")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	c := framework.StartCluster(t, framework.Options{BinDir: binDir})
	testPools := DefaultPools()
	for i := range testPools {
		if testPools[i].Name == "nodepool1" {
			testPools[i].Count = 3 // one for kubectl debug, one for an AKS upgrade, one for the sentinel command
		}
	}
	pools, err := CreatePools(ctx, c, testPools)
	if err != nil {
		t.Fatal(err)
	}
	windows := pools.Windows[0]
	// AKS's add-ons on the system pool: CoreDNS with two replicas, one per
	// node, and a budget of one disruption. A user workload on nodepool1.
	critical := []corev1.Toleration{{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists}}
	if err := spread(ctx, c, "kube-system", "coredns", 2, map[string]string{LabelMode: "system"}, critical); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := spread(ctx, c, "shop", "web", 2, map[string]string{LabelAgentPool: "nodepool1"}, nil); err != nil {
		t.Fatal(err)
	}
	kured := kuredDaemonSet()
	if _, err := c.Client.AppsV1().DaemonSets("kube-system").Create(ctx, kured, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	obs := observe(ctx, t, c)

	home := t.TempDir()
	s := newSession(t, blocks, root, []string{
		"PATH=" + binDir + ":" + os.Getenv("PATH"),
		"KUBECONFIG=" + c.AdminKubeconfig,
		"HOME=" + home,
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HELM_DATA_HOME=" + filepath.Join(home, "data"),
	})

	// 1. The pools as AKS labels them.
	out := s.run(ctx, "pools")
	for _, want := range []string{"AGENTPOOL", "MODE", "OS-SKU", "systempool", "nodepool1", "azlinux", "npwin", "Windows2022", "AzureLinux", windows} {
		if !strings.Contains(out, want) {
			t.Errorf("pools: output lacks %q", want)
		}
	}

	// 2. Install with Helm; the kustomize overlay renders the same settings.
	s.run(ctx, "install-helm")
	checkKustomize(ctx, t, s, c, root)
	ds := waitDaemonSet(ctx, t, c, len(pools.Linux))
	out = s.run(ctx, "check-install")
	checkDetectorPods(ctx, t, c, out, pools)

	// The binaries run as the installed objects say (kwok runs no
	// container): a detector on every Linux host, one controller.
	controllerKubeconfig, _, err := c.ServiceAccountKubeconfig(ctx, systemNS, "nodereboot-controller")
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]*host{}
	startHosts := func(installed []string) {
		for _, name := range pools.Linux {
			h := hosts[name]
			if h == nil {
				h = &host{name: name, dir: filepath.Join(c.Dir, "hosts", name), pool: pools.Pool[name]}
				if err := h.prepare(); err != nil {
					t.Fatal(err)
				}
				hosts[name] = h
				t.Cleanup(h.stop)
			}
			if err := h.start(ctx, c, binDir, installed, podTokenKubeconfig(ctx, t, c, name)); err != nil {
				t.Fatalf("host %s: %v", name, err)
			}
		}
	}
	startHosts(containerArgs(ds.Spec.Template.Spec))
	dep, err := c.Client.AppsV1().Deployments(systemNS).Get(ctx, "nodereboot-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Verbose: the log is kept only when the test fails, and then it
	// should show each drain pass and eviction.
	ctrlArgs := append(without(containerArgs(dep.Spec.Template.Spec), "kubeconfig", "metrics-bind-address", "health-probe-bind-address", "leader-elect-resource-namespace", "v"),
		"--kubeconfig="+controllerKubeconfig, "--leader-elect-resource-namespace="+systemNS,
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--v=4")
	ctrl := framework.NewProcess("controller", filepath.Join(binDir, "nodereboot-controller"), ctrlArgs, c.LogDir)
	if err := ctrl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctrl.Stop(10 * time.Second) })
	for _, name := range pools.Linux {
		if _, err := c.WaitForNode(ctx, name, conditionReason(corev1.ConditionFalse, "SentinelAbsent")); err != nil {
			t.Fatalf("detector of %s: %v", name, err)
		}
	}

	// 3. Test without SSH: kubectl debug writes the sentinel on NODE.
	s.run(ctx, "pick-node")
	node := s.get("NODE")
	if pools.Pool[node].Name != "nodepool1" {
		t.Fatalf("pick-node: NODE=%q, want a nodepool1 node", node)
	}
	interactive, batch := s.block("debug-interactive").Text, s.block("debug").Text
	if strings.Replace(interactive, " -it ", " ", 1) != batch {
		t.Errorf("the interactive and the non-interactive debug commands differ by more than -it:\n%s%s", interactive, batch)
	}
	watch := s.start(ctx, "watch")
	s.run(ctx, "debug")
	runDebugPod(ctx, t, c, node, hosts[node])
	if _, err := hosts[node].sim.WaitForReboots(ctx, 1); err != nil {
		t.Fatalf("%s was not rebooted: %v", node, err)
	}
	if _, err := c.WaitForNode(ctx, node, func(n *corev1.Node) bool {
		return idle(n) && conditionReason(corev1.ConditionFalse, "SentinelAbsent")(n)
	}); err != nil {
		t.Fatal(err)
	}

	// 4. Watch: every step of the table, as events of NODE.
	waitOutput(ctx, t, watch, node, "RebootRequired", "Cordoned", "Draining", "Drained",
		"RebootAuthorized", "Rebooting", "Rebooted", "Uncordoned", "RebootCompleted", "RebootNotRequired")
	out = s.run(ctx, "describe")
	for _, want := range []string{"RebootRequired", "SentinelAbsent", contract.AnnotationLastReboot, "RebootCompleted", "NODE", node} {
		if !strings.Contains(out, want) {
			t.Errorf("describe/status: output lacks %q", want)
		}
	}

	// The Windows node is never taken, even when asked.
	if _, err := c.Kubectl(ctx, "annotate", "node", windows, contract.AnnotationRebootRequested+"=yes"); err != nil {
		t.Fatal(err)
	}

	// The system pool: both nodes need a reboot; CoreDNS's budget lets them
	// go one after the other.
	system := []string{}
	for _, name := range pools.Linux {
		if pools.Pool[name].Mode == "system" {
			system = append(system, name)
			if err := hosts[name].sim.CreateSentinel(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range system {
		if _, err := hosts[name].sim.WaitForReboots(ctx, 1); err != nil {
			t.Fatalf("system node %s was not rebooted: %v", name, err)
		}
		if _, err := c.WaitForNode(ctx, name, idle); err != nil {
			t.Fatal(err)
		}
	}

	// An AKS upgrade, as the page says to run it today: pause, AKS cordons
	// and drains a node (here kubectl drain, the same API calls) whose
	// sentinel appears meanwhile, nodereboot leaves it alone, AKS
	// uncordons it, resume, nodereboot reboots it.
	upgraded := pools.Linux[0]
	for _, name := range pools.Linux {
		if pools.Pool[name].Name == "nodepool1" && name != node {
			upgraded = name
			break
		}
	}
	s.run(ctx, "pause")
	cm, err := c.Client.CoreV1().ConfigMaps(systemNS).Get(ctx, contract.ConfigMapName, metav1.GetOptions{})
	if err != nil || cm.Annotations[contract.AnnotationPaused] != "true" || cm.Annotations[contract.AnnotationPausedReason] != "AKS upgrade" {
		t.Fatalf("pause: ConfigMap %v, %v", cm, err)
	}
	if _, err := c.Kubectl(ctx, "drain", upgraded, "--ignore-daemonsets", "--delete-emptydir-data"); err != nil {
		t.Fatal(err)
	}
	if err := hosts[upgraded].sim.CreateSentinel(); err != nil {
		t.Fatal(err)
	}
	// The admission pass saw the node waiting (RebootQueued) and, paused,
	// did not take it (RebootBlocked).
	for _, reason := range []string{contract.ReasonRebootQueued, contract.ReasonRebootBlocked} {
		if err := waitEvent(ctx, c, upgraded, reason); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.Client.CoreV1().Nodes().Get(ctx, upgraded, metav1.GetOptions{}); err != nil || !idleButCordoned(n) {
		t.Fatalf("paused, yet %s was taken: %v %v", upgraded, n.Annotations, err)
	}
	if _, err := c.Kubectl(ctx, "uncordon", upgraded); err != nil {
		t.Fatal(err)
	}
	s.run(ctx, "resume")
	if cm, err = c.Client.CoreV1().ConfigMaps(systemNS).Get(ctx, contract.ConfigMapName, metav1.GetOptions{}); err != nil || cm.Annotations[contract.AnnotationPaused] != "" {
		t.Errorf("resume: ConfigMap %v, %v", cm, err)
	}
	if _, err := hosts[upgraded].sim.WaitForReboots(ctx, 1); err != nil {
		t.Fatalf("%s was not rebooted after resume: %v", upgraded, err)
	}
	if _, err := c.WaitForNode(ctx, upgraded, idle); err != nil {
		t.Fatal(err)
	}

	// Azure Linux: the sentinel command on every Linux node.
	s.run(ctx, "install-azurelinux")
	ds, err = c.Client.AppsV1().DaemonSets(systemNS).Get(ctx, "nodereboot-detector", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	installed := containerArgs(ds.Spec.Template.Spec)
	if v, _ := flagValue(installed, "sentinel-command"); !strings.Contains(v, "needs-restarting -r") {
		t.Fatalf("install-azurelinux: the DaemonSet runs no needs-restarting: %q", installed)
	}
	for _, h := range hosts {
		h.stop()
	}
	waitDaemonSet(ctx, t, c, len(pools.Linux)) // the DaemonSet's rollout: new pods, new tokens
	startHosts(installed)
	var azl, ubuntu string
	for _, name := range pools.Linux {
		switch {
		case pools.Pool[name].OSSKU == "AzureLinux":
			azl = name
		case pools.Pool[name].Name == "nodepool1" && name != node && name != upgraded:
			ubuntu = name
		}
	}
	for _, name := range pools.Linux {
		if _, err := c.WaitForNode(ctx, name, conditionReason(corev1.ConditionFalse, "SentinelCommandNotRequired")); err != nil {
			t.Fatalf("sentinel command on %s: %v", name, err)
		}
	}
	if err := hosts[azl].patchKernel(); err != nil {
		t.Fatal(err)
	}
	if err := hosts[ubuntu].sim.CreateSentinel(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{azl, ubuntu} {
		if _, err := hosts[name].sim.WaitForReboots(ctx, 1); err != nil {
			t.Fatalf("%s was not rebooted through the sentinel command: %v", name, err)
		}
		if _, err := c.WaitForNode(ctx, name, func(n *corev1.Node) bool {
			return idle(n) && conditionReason(corev1.ConditionFalse, "SentinelCommandNotRequired")(n)
		}); err != nil {
			t.Fatal(err)
		}
	}

	// Reboot window next to AKS's maintenance window.
	s.run(ctx, "window")
	dep, err = c.Client.AppsV1().Deployments(systemNS).Get(ctx, "nodereboot-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	windowArgs := containerArgs(dep.Spec.Template.Spec)
	o := parseController(t, windowArgs)
	if !reflect.DeepEqual(o.RebootDays, []string{"mo", "tu", "we", "th", "fr"}) || o.StartTime != "22:00" || o.EndTime != "05:00" || o.TimeZone != "Europe/Berlin" {
		t.Errorf("window: the controller would run with days %v, %s-%s %s", o.RebootDays, o.StartTime, o.EndTime, o.TimeZone)
	}
	if v, _ := flagValue(windowArgs, "node-selector"); v != "kubernetes.io/os=linux" {
		t.Errorf("window: --reuse-values lost the AKS preset: node-selector %q", v)
	}

	if out := s.run(ctx, "pdbs"); !strings.Contains(out, "coredns") {
		t.Errorf("pdbs: no coredns budget in %q", out)
	}

	// Migrating: kured's lock held by hand.
	s.run(ctx, "kured-lock")
	kured, err = c.Client.AppsV1().DaemonSets("kube-system").Get(ctx, "kured", metav1.GetOptions{})
	if err != nil || kured.Annotations["weave.works/kured-node-lock"] != `{"nodeID":"manual"}` {
		t.Errorf("kured-lock: %v, %v", kured.Annotations, err)
	}

	// What happened to every node.
	maxOut, touched, protected := obs.snapshot()
	if maxOut > 1 {
		t.Errorf("%d nodes were in the pipeline at once; the preset allows 1", maxOut)
	}
	if touched[windows] {
		t.Errorf("the Windows node %s was cordoned or annotated by nodereboot", windows)
	}
	for _, name := range append([]string{node, upgraded, azl, ubuntu}, system...) {
		if !protected[name] {
			t.Errorf("%s was not protected from the Cluster Autoscaler while rebooting", name)
		}
	}
	for _, name := range pools.Linux { // each of them needed one reboot
		if n := hosts[name].rebootCount(); n != 1 {
			t.Errorf("%s rebooted %d times, want 1", name, n)
		}
	}
	podsOnWindows, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + windows})
	if err != nil || len(podsOnWindows.Items) != 0 {
		t.Errorf("pods on the Windows node: %v, %v", podsOnWindows, err)
	}

	// Clean-up.
	s.run(ctx, "cleanup-debug")
	if pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=kubectl-debug"}); err != nil || len(pods.Items) != 0 {
		t.Errorf("cleanup-debug left %v, %v", pods, err)
	}
	if err := watch.stop(); err != nil {
		t.Errorf("watch: %v", err)
	}
	ctrl.Stop(10 * time.Second)
	for _, h := range hosts {
		h.stop()
	}
	s.run(ctx, "uninstall")
	if _, err := c.Client.AppsV1().DaemonSets(systemNS).Get(ctx, "nodereboot-detector", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("uninstall: the DaemonSet is still there (%v)", err)
	}
	if ns, err := c.Client.CoreV1().Namespaces().Get(ctx, systemNS, metav1.GetOptions{}); err == nil && ns.DeletionTimestamp == nil {
		t.Errorf("uninstall: namespace %s is not being deleted", systemNS)
	}
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if _, ok := n.Annotations[contract.AnnotationLastReboot]; ok {
			t.Errorf("uninstall: %s keeps %s", n.Name, contract.AnnotationLastReboot)
		}
	}
	if left := s.unused(); len(left) > 0 {
		sort.Strings(left)
		t.Errorf("marked blocks of docs/aks.md that the test does not run: %v", left)
	}
}

// kuredDaemonSet stands for kured installed by its Helm chart on AKS:
// kube-system/kured on the Linux nodes.
func kuredDaemonSet() *appsv1.DaemonSet {
	labels := map[string]string{"app.kubernetes.io/name": "kured"}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kured", Namespace: "kube-system"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{LabelOS: "linux"},
					Containers:   []corev1.Container{{Name: "kured", Image: "ghcr.io/kubereboot/kured:1.17.1"}},
				},
			},
		},
	}
}

// containerArgs is the first container's args; for a detector pod with a
// sentinel container, the detector container's with detection on: the
// simulated host runs one detector process for the pod's two containers
// (one reboots, one detects; detectorArgs points both halves at the host).
func containerArgs(spec corev1.PodSpec) []string {
	args := spec.Containers[0].Args
	if len(spec.Containers) == 2 && spec.Containers[1].Name == "sentinel" {
		args = append(without(args, "detection"), "--detection=true")
	}
	return args
}

// waitDaemonSet waits until the detector DaemonSet has scheduled and
// readied a pod on want nodes, and returns it.
func waitDaemonSet(ctx context.Context, t *testing.T, c *framework.Cluster, want int) *appsv1.DaemonSet {
	t.Helper()
	obj, err := framework.WaitFor(ctx, c.Client.AppsV1().RESTClient(), "daemonsets", systemNS, "nodereboot-detector", &appsv1.DaemonSet{}, func(o any) bool {
		ds := o.(*appsv1.DaemonSet)
		st := ds.Status
		return st.ObservedGeneration == ds.Generation && st.DesiredNumberScheduled == int32(want) && st.CurrentNumberScheduled == int32(want) &&
			st.UpdatedNumberScheduled == int32(want) && st.NumberReady == int32(want)
	})
	if err != nil {
		t.Fatalf("detector DaemonSet: %v", err)
	}
	return obj.(*appsv1.DaemonSet)
}

// checkDetectorPods checks that the detector pods run on the Linux nodes,
// one each, and none on Windows, in the API and in check-install's output.
func checkDetectorPods(ctx context.Context, t *testing.T, c *framework.Cluster, out string, pools *Created) {
	t.Helper()
	pods, err := c.Client.CoreV1().Pods(systemNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=detector"})
	if err != nil {
		t.Fatal(err)
	}
	var on []string
	for _, p := range pods.Items {
		on = append(on, p.Spec.NodeName)
	}
	sort.Strings(on)
	linux := append([]string(nil), pools.Linux...)
	sort.Strings(linux)
	if !reflect.DeepEqual(on, linux) {
		t.Errorf("detector pods on %v, want exactly the Linux nodes %v", on, linux)
	}
	for _, n := range pools.Linux {
		if !strings.Contains(out, n) {
			t.Errorf("check-install: no detector pod on %s in the output", n)
		}
	}
	for _, n := range pools.Windows {
		if strings.Contains(out, n) {
			t.Errorf("check-install: a detector pod on the Windows node %s", n)
		}
	}
}

// runDebugPod checks the pod `kubectl debug node` made and does what its
// container would do on the simulated host (kwok runs no container):
// chroot /host touch FILE creates FILE in the host's folder, and the pod
// completes.
func runDebugPod(ctx context.Context, t *testing.T, c *framework.Cluster, node string, h *host) {
	t.Helper()
	pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=kubectl-debug"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("debug: want one debug pod, got %v (%v)", pods, err)
	}
	p := pods.Items[0]
	if p.Spec.NodeName != node || !strings.HasPrefix(p.Name, "node-debugger-"+node+"-") {
		t.Fatalf("debug pod %s on %q, want on %s", p.Name, p.Spec.NodeName, node)
	}
	hostRoot := ""
	for _, m := range p.Spec.Containers[0].VolumeMounts {
		for _, v := range p.Spec.Volumes {
			if v.Name == m.Name && v.HostPath != nil && v.HostPath.Path == "/" {
				hostRoot = m.MountPath
			}
		}
	}
	cmd := p.Spec.Containers[0].Command
	if hostRoot != "/host" || len(cmd) != 4 || cmd[0] != "chroot" || cmd[1] != hostRoot || cmd[2] != "touch" {
		t.Fatalf("debug pod: host / at %q, command %q; want chroot /host touch FILE", hostRoot, cmd)
	}
	// The host's /var/run is the simulator's run folder.
	rel, ok := strings.CutPrefix(cmd[3], "/var/run/")
	if !ok {
		t.Fatalf("debug pod touches %s, not a file in /var/run", cmd[3])
	}
	if err := os.WriteFile(filepath.Join(h.sim.RunDir(), rel), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodSucceeded
	if _, err := c.Client.CoreV1().Pods("default").UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		t.Logf("debug pod status: %v", err) // the drain may have evicted it already
	}
}

// waitOutput waits until a background block's output has a line naming
// node/NODE with each reason.
func waitOutput(ctx context.Context, t *testing.T, bg *background, node string, reasons ...string) {
	t.Helper()
	missing := func() []string {
		var m []string
		lines := strings.Split(bg.Output(), "\n")
		for _, r := range reasons {
			found := false
			for _, l := range lines {
				f := strings.Fields(l)
				found = found || (slices.Contains(f, r) && slices.Contains(f, "node/"+node))
			}
			if !found {
				m = append(m, r)
			}
		}
		return m
	}
	tick := time.NewTicker(100 * time.Millisecond) // a kubectl watch's output cannot be watched
	defer tick.Stop()
	for len(missing()) > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("watch: no event %v for node/%s in:\n%s", missing(), node, bg.Output())
		case <-tick.C:
		}
	}
}

// checkKustomize writes the page's overlay (its URLs pointed at this
// checkout), checks that it renders the settings the Helm preset renders —
// the same flags as parsed by the binaries, node selectors and tolerations,
// with the aks-azurelinux component against values-aks-azurelinux.yaml too
// — and applies it with a server-side dry run.
func checkKustomize(ctx context.Context, t *testing.T, s *session, c *framework.Cluster, root string) {
	t.Helper()
	b := s.block("kustomization")
	dir := filepath.Join(t.TempDir(), "my-cluster", "nodereboot")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, root)
	if err != nil {
		t.Fatal(err)
	}
	local := strings.NewReplacer("https://github.com/nodereboot/nodereboot//", rel+"/", "?ref=v0.1.0", "").Replace(b.Text)
	if local == b.Text {
		t.Fatalf("kustomization: no github.com/nodereboot/nodereboot URL to point at the checkout:\n%s", b.Text)
	}
	write := func(text string) {
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(local)
	kubectl := func(args ...string) string {
		out, err := c.Kubectl(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	helm := func(values ...string) string {
		args := []string{"template", "nodereboot", "deploy/helm/nodereboot", "--namespace", systemNS}
		for _, v := range values {
			args = append(args, "-f", "deploy/helm/nodereboot/"+v)
		}
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "helm"), args...)
		cmd.Dir, cmd.Env = root, s.env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helm %v: %v", args, err)
		}
		return string(out)
	}
	compare(t, "aks", kubectl("kustomize", dir), helm("values-aks.yaml"))
	kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-k", dir)

	azl := local + "  - " + rel + "/deploy/components/aks-azurelinux\n"
	if !strings.HasSuffix(local, "/deploy/components/aks\n") {
		t.Fatalf("kustomization: the aks component is not the last line:\n%s", local)
	}
	write(azl)
	compare(t, "aks-azurelinux", kubectl("kustomize", dir), helm("values-aks.yaml", "values-aks-azurelinux.yaml"))
}

// compare checks that two renderings run the detector and the controller
// with the same options and on the same nodes.
func compare(t *testing.T, what, kustomized, helmed string) {
	t.Helper()
	k, h := decode(t, kustomized), decode(t, helmed)
	for _, obj := range []struct{ kind, name string }{{"DaemonSet", "nodereboot-detector"}, {"Deployment", "nodereboot-controller"}} {
		ks, hs := podSpec(t, k, obj.kind, obj.name), podSpec(t, h, obj.kind, obj.name)
		if !reflect.DeepEqual(ks.NodeSelector, hs.NodeSelector) || !reflect.DeepEqual(ks.Tolerations, hs.Tolerations) {
			t.Errorf("%s: %s: kustomize nodeSelector %v tolerations %v; Helm %v %v", what, obj.kind, ks.NodeSelector, ks.Tolerations, hs.NodeSelector, hs.Tolerations)
		}
		ka, ha := containerArgs(ks), containerArgs(hs)
		if obj.kind == "DaemonSet" {
			if ko, ho := parseDetector(t, ka), parseDetector(t, ha); !reflect.DeepEqual(ko, ho) {
				t.Errorf("%s: the detector's options differ:\nkustomize %+v\nHelm      %+v", what, ko, ho)
			}
		} else if ko, ho := parseController(t, ka), parseController(t, ha); !reflect.DeepEqual(ko, ho) {
			t.Errorf("%s: the controller's options differ:\nkustomize %+v\nHelm      %+v", what, ko, ho)
		}
	}
}

func decode(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := d.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

func podSpec(t *testing.T, objs []*unstructured.Unstructured, kind, name string) corev1.PodSpec {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() != kind || u.GetName() != name {
			continue
		}
		raw, ok, err := unstructured.NestedMap(u.Object, "spec", "template", "spec")
		if err != nil || !ok {
			t.Fatalf("%s %s: no pod spec (%v)", kind, name, err)
		}
		var spec corev1.PodSpec
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &spec); err != nil {
			t.Fatal(err)
		}
		return spec
	}
	t.Fatalf("no %s %s", kind, name)
	return corev1.PodSpec{}
}
