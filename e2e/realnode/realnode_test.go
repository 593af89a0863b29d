package realnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/framework"
)

const (
	vmNode      = "vm-0"
	kwokNode    = "kwok-0"
	systemNS    = "nodereboot-system"
	workloadNS  = "workload"
	condition   = "RebootRequired"
	stateAnno   = "nodereboot.io/state"
	authAnno    = "nodereboot.io/reboot-authorized"
	kubeVersion = "v1.37.2"
)

// node is the local control plane with one kwok node and one VM node.
type node struct {
	c                    *framework.Cluster
	vm                   *VM
	in                   inputs
	image, pause, busybx string
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startNode starts the control plane with a kwok node and boots the VM
// node, and returns when the kubelet reports it Ready.
func startNode(t *testing.T, ctx context.Context) *node {
	in := needInputs(t)
	token := randomHex(16)
	c := framework.StartCluster(t, framework.Options{
		Nodes: 1, NodeNamePrefix: "kwok-",
		Users: []framework.StaticUser{{Token: token, Name: "system:node:" + vmNode, Groups: []string{"system:nodes"}}},
	})
	n := &node{c: c, in: in}
	dir := filepath.Join(c.Dir, "vm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bb, bbRef := busyboxImage(t, in, dir)
	n.busybx = bbRef
	n.image = imageName(t, filepath.Join(in.imageDir, "nodereboot.oci.tar"))
	n.pause = imageName(t, filepath.Join(in.imageDir, "pause.oci.tar"))

	started := time.Now()
	disk := filepath.Join(dir, "disk.img")
	kernel, initrd, err := BuildDisk(ctx, disk, VMInputs{
		Base: in.base, NodeBin: in.nodeBin,
		Images: []string{filepath.Join(in.imageDir, "nodereboot.oci.tar"), filepath.Join(in.imageDir, "pause.oci.tar"), bb},
	}, NodeConfig{
		NodeName: vmNode, Token: token, CA: c.CAData, PauseImage: n.pause, KubeVersion: kubeVersion,
		ShutdownGracePeriod: "30s", ShutdownGracePeriodCriticalPods: "10s",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VM disk built in %s", time.Since(started).Round(time.Second))

	u, err := url.Parse(c.Server)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	proxy := "env " + proxyEnv + "=" + u.Host + " " + exe
	n.vm, err = StartVM(vmNode, c.LogDir, disk, kernel, initrd, proxy, 1536)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			t.Logf("VM diagnostics:\n%s", n.vm.Diagnostics(dctx))
			t.Logf("VM console: %s", n.vm.Console)
		}
		n.vm.Stop()
	})
	if _, err := c.WaitForNode(ctx, vmNode, framework.NodeReady); err != nil {
		t.Fatalf("the VM's kubelet: %v (console %s)", err, n.vm.Console)
	}
	t.Logf("VM node %s Ready %s after boot", vmNode, time.Since(started).Round(time.Second))
	return n
}

// step is one observed moment of the pipeline.
type step struct {
	name, detail string
	at           time.Time
}

// timeline records the first time each step was observed.
type timeline struct {
	mu    sync.Mutex
	start time.Time
	steps []step
}

func (tl *timeline) mark(name, detail string) { tl.markAt(name, detail, time.Now()) }

// markAt records a step at a time measured otherwise (the VM's clock).
func (tl *timeline) markAt(name, detail string, at time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, s := range tl.steps {
		if s.name == name {
			return
		}
	}
	tl.steps = append(tl.steps, step{name: name, detail: detail, at: at})
	slices.SortStableFunc(tl.steps, func(a, b step) int { return a.at.Compare(b.at) })
}

func (tl *timeline) get(name string) (step, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, s := range tl.steps {
		if s.name == name {
			return s, true
		}
	}
	return step{}, false
}

func (tl *timeline) has(name string) bool { _, ok := tl.get(name); return ok }

func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	for _, s := range tl.steps {
		fmt.Fprintf(&b, "  %8.2fs  %-38s %s\n", s.at.Sub(tl.start).Seconds(), s.name, s.detail)
	}
	return b.String()
}

// Steps the observers mark, in the order they must happen.
const (
	stSentinel     = "sentinel pod created"
	stFile         = "sentinel file created (VM's clock)"
	stCondTrue     = "condition RebootRequired=True"
	stCordon       = "node cordoned"
	stDraining     = "state Draining"
	stDrained      = "workload running on " + kwokNode
	stAuthorized   = "authorized (boot ID annotation)"
	stKernelDown   = "VM stops answering (shutdown begun)"
	stRestarting   = "console: reboot: Restarting system"
	stGraceful     = "kubelet: graceful node shutdown"
	stNotReady     = "node NotReady"
	stVMNewBoot    = "VM answers with a new boot ID"
	stKubeletBoot  = "kubelet reports the new boot ID"
	stReady        = "node Ready again"
	stDetectorBack = "detector pod Ready again"
	stCondFalse    = "condition RebootRequired=False"
	stUncordon     = "node uncordoned"
	stDone         = "state annotation cleared"
)

func nodeCondition(n *corev1.Node, typ corev1.NodeConditionType) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// observe watches the node, the pods and the VM and marks the steps.
func observe(ctx context.Context, n *node, tl *timeline, oldBoot, oldDetector string, restartsBefore int) {
	f := informers.NewSharedInformerFactoryWithOptions(n.c.Client, 0)
	f.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { onNode(tl, o.(*corev1.Node), oldBoot) },
		UpdateFunc: func(_, o any) { onNode(tl, o.(*corev1.Node), oldBoot) },
	})
	pods := f.Core().V1().Pods().Informer()
	onPod := func(any) { onPods(tl, pods.GetStore().List(), oldDetector) }
	pods.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }, DeleteFunc: onPod})
	f.Core().V1().Events().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			e := o.(*corev1.Event)
			if e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == vmNode && e.Reason == "Shutdown" &&
				e.Source.Component == "kubelet" && tl.has(stAuthorized) {
				tl.mark(stGraceful, e.Message)
			}
		},
	})
	f.Start(ctx.Done())

	// The console and the boot ID are read by two loops: a boot-ID read
	// may wait for its timeout while the guest is down.
	go every(ctx, 200*time.Millisecond, func() {
		if n.vm.ConsoleCount(restartingLine) > restartsBefore {
			tl.mark(stRestarting, "")
		}
	})
	go every(ctx, 500*time.Millisecond, func() {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		id, err := n.vm.BootID(rctx)
		switch {
		case err != nil && tl.has(stAuthorized) && !tl.has(stVMNewBoot):
			tl.mark(stKernelDown, err.Error())
		case err == nil && id != oldBoot:
			tl.mark(stVMNewBoot, id)
		}
	})
}

// restartingLine is what the kernel prints on the console as it restarts.
const restartingLine = "reboot: Restarting system"

// every runs f every period until ctx ends.
func every(ctx context.Context, period time.Duration, f func()) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f()
		}
	}
}

func onNode(tl *timeline, n *corev1.Node, oldBoot string) {
	if n.Name != vmNode {
		return
	}
	if nodeCondition(n, condition) == corev1.ConditionTrue {
		tl.mark(stCondTrue, "")
	}
	if n.Spec.Unschedulable {
		tl.mark(stCordon, "")
	}
	switch n.Annotations[stateAnno] {
	case "Draining":
		tl.mark(stDraining, "")
	case "Authorized":
		tl.mark(stAuthorized, n.Annotations[authAnno])
	}
	if v := n.Annotations[authAnno]; v != "" {
		tl.mark(stAuthorized, v)
	}
	ready := nodeCondition(n, corev1.NodeReady) == corev1.ConditionTrue
	if !ready && tl.has(stAuthorized) {
		tl.mark(stNotReady, "")
	}
	if n.Status.NodeInfo.BootID != oldBoot {
		tl.mark(stKubeletBoot, n.Status.NodeInfo.BootID)
	}
	if !tl.has(stKubeletBoot) {
		return
	}
	if ready {
		tl.mark(stReady, "")
	}
	if nodeCondition(n, condition) == corev1.ConditionFalse {
		tl.mark(stCondFalse, "")
	}
	if !n.Spec.Unschedulable {
		tl.mark(stUncordon, "")
	}
	if n.Annotations[stateAnno] == "" && tl.has(stUncordon) {
		tl.mark(stDone, "")
	}
}

func onPods(tl *timeline, objs []any, oldDetector string) {
	onKwok := 0
	for _, o := range objs {
		p := o.(*corev1.Pod)
		switch {
		case p.Namespace == workloadNS && p.Labels["app"] == "web" && p.Spec.NodeName == kwokNode && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil:
			onKwok++
		case p.Namespace == systemNS && p.Spec.NodeName == vmNode && p.Labels["app.kubernetes.io/component"] == "detector" && tl.has(stKubeletBoot):
			if id := detectorContainer(p); id != "" && id != oldDetector && podReady(p) {
				tl.mark(stDetectorBack, "container "+shortID(id))
			}
		}
	}
	if onKwok == 2 {
		tl.mark(stDrained, "")
	}
}

func shortID(id string) string {
	if _, after, ok := strings.Cut(id, "://"); ok {
		id = after
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

func detectorContainer(p *corev1.Pod) string {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == "detector" && s.State.Running != nil {
			return s.ContainerID
		}
	}
	return ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// install applies deploy/ with kustomize as a user would, with the image
// retagged to the one make image built and the given components. The
// controller's Deployment is scaled to 0: the controller runs on the
// machine (startController), so that draining the only real node never
// evicts it.
func install(t *testing.T, ctx context.Context, n *node, comps ...string) {
	t.Helper()
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, filepath.Join(n.in.root, "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	name, tag, _ := strings.Cut(n.image[strings.LastIndex(n.image, "/")+1:], ":")
	repo := n.image[:strings.LastIndex(n.image, "/")+1] + name
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\n", rel)
	if len(comps) > 0 {
		b.WriteString("components:\n")
		for _, c := range comps {
			fmt.Fprintf(&b, "  - %s/components/%s\n", rel, c)
		}
	}
	fmt.Fprintf(&b, "images:\n  - name: ghcr.io/nodereboot/nodereboot\n    newName: %s\n    newTag: %s\n", repo, tag)
	b.WriteString("patches:\n  - target: {kind: Deployment, name: nodereboot-controller}\n    patch: |-\n      - op: replace\n        path: /spec/replicas\n        value: 0\n")
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := n.c.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-k", dir); err != nil {
		t.Fatalf("kubectl apply -k: %v\n%s", err, out)
	}
}

// startController runs the controller on the machine with its service
// account's token (the manifests' RBAC) and the Deployment's flags.
func startController(t *testing.T, ctx context.Context, n *node) {
	t.Helper()
	kc, _, err := n.c.ServiceAccountKubeconfig(ctx, systemNS, "nodereboot-controller")
	if err != nil {
		t.Fatal(err)
	}
	p := framework.NewProcess("nodereboot-controller", filepath.Join(n.in.bin, "nodereboot-controller"), []string{
		"--kubeconfig=" + kc, "--max-concurrent=1", "--leader-elect-resource-namespace=" + systemNS,
		// One node reboots once per method here, minutes apart.
		"--min-reboot-interval=1s", "--eviction-retry-delay=1s",
		"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0",
	}, n.c.LogDir)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(10 * time.Second) })
}

// workload is a Deployment of two pods that prefer the VM node and a
// PodDisruptionBudget that lets one go at a time.
func workload(t *testing.T, ctx context.Context, n *node) {
	t.Helper()
	cs := n.c.Client
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: workloadNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: workloadNS},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](5),
					Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{
							Weight: 100,
							Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{
								Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{vmNode},
							}}},
						}},
					}},
					Containers: []corev1.Container{{Name: "web", Image: n.pause, ImagePullPolicy: corev1.PullNever}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(workloadNS).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: workloadNS},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets(workloadNS).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitPods waits until cond holds for the pods of a namespace and selector.
func waitPods(t *testing.T, ctx context.Context, n *node, ns, selector, what string, cond func([]corev1.Pod) bool) []corev1.Pod {
	t.Helper()
	var last []corev1.Pod
	lw := cache.NewFilteredListWatchFromClient(n.c.Client.CoreV1().RESTClient(), "pods", ns, func(o *metav1.ListOptions) { o.LabelSelector = selector })
	store, informer := cache.NewInformerWithOptions(cache.InformerOptions{ListerWatcher: lw, ObjectType: &corev1.Pod{}, Handler: cache.ResourceEventHandlerFuncs{}})
	done := make(chan struct{})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { informer.RunWithContext(wctx); close(done) }()
	defer func() { cancel(); <-done }()
	for {
		var pods []corev1.Pod
		for _, o := range store.List() {
			pods = append(pods, *o.(*corev1.Pod))
		}
		last = pods
		if informer.HasSynced() && cond(pods) {
			return pods
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v; pods: %s", what, ctx.Err(), describePods(last))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func describePods(pods []corev1.Pod) string {
	var s []string
	for _, p := range pods {
		s = append(s, fmt.Sprintf("%s on %q %s ready=%v", p.Name, p.Spec.NodeName, p.Status.Phase, podReady(&p)))
	}
	return strings.Join(s, "; ")
}

// detectorPod waits for the detector pod on the VM node to be Ready with the
// given reboot method and returns it.
func detectorPod(t *testing.T, ctx context.Context, n *node, method string) corev1.Pod {
	t.Helper()
	pods := waitPods(t, ctx, n, systemNS, "app.kubernetes.io/component=detector", "the detector on "+vmNode, func(ps []corev1.Pod) bool {
		return slices.ContainsFunc(ps, func(p corev1.Pod) bool {
			return p.Spec.NodeName == vmNode && p.DeletionTimestamp == nil && podReady(&p) &&
				slices.Contains(p.Spec.Containers[0].Args, "--reboot-method="+method)
		})
	})
	for _, p := range pods {
		if p.Spec.NodeName == vmNode && p.DeletionTimestamp == nil && podReady(&p) {
			return p
		}
	}
	panic("unreachable")
}

// TestRealNode: a kubelet in a VM, nodereboot installed from deploy/, a
// workload with a PodDisruptionBudget; the OS asks for a reboot and the
// whole pipeline runs on a real kernel, once per reboot method, observed
// from outside.
func TestRealNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	n := startNode(t, ctx)
	install(t, ctx, n)
	startController(t, ctx, n)
	workload(t, ctx, n)

	for _, m := range []struct{ method, component string }{{"command", ""}, {"signal", "reboot-signal"}, {"dbus", "reboot-dbus"}} {
		if !t.Run(m.method, func(t *testing.T) { rebootOnce(t, ctx, n, m.method, m.component) }) {
			return
		}
	}
}

// rebootOnce installs the method's component, puts the workload on the VM
// node, writes the sentinel and follows the reboot to its end.
func rebootOnce(t *testing.T, ctx context.Context, n *node, method, component string) {
	if component != "" {
		install(t, ctx, n, component)
	}
	r := trigger(t, ctx, n, method)
	r.follow(t, ctx)
}

// run is one reboot being observed.
type run struct {
	n              *node
	method         string
	tl             *timeline
	oldBoot        string
	restartsBefore int
	stop           context.CancelFunc
}

// trigger waits for the detector with the method and the workload on the
// VM node, starts the observers and writes the sentinel.
func trigger(t *testing.T, ctx context.Context, n *node, method string) *run {
	t.Helper()
	cs := n.c.Client
	det := detectorPod(t, ctx, n, method)
	oldDetector := detectorContainer(&det)

	// The workload on the VM node (after an earlier reboot it is on kwok-0).
	_ = cs.CoreV1().Pods(workloadNS).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=web",
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", kwokNode).String()})
	waitPods(t, ctx, n, workloadNS, "app=web", "the workload on "+vmNode, func(ps []corev1.Pod) bool {
		on := 0
		for _, p := range ps {
			if p.Spec.NodeName == vmNode && podReady(&p) && p.DeletionTimestamp == nil {
				on++
			}
		}
		return on == 2 && len(ps) == 2
	})

	oldBoot, err := n.vm.BootID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nodeObj, err := cs.CoreV1().Nodes().Get(ctx, vmNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nodeObj.Status.NodeInfo.BootID != oldBoot {
		t.Fatalf("the kubelet reports boot ID %s, the VM says %s", nodeObj.Status.NodeInfo.BootID, oldBoot)
	}
	r := &run{n: n, method: method, tl: &timeline{start: time.Now()}, oldBoot: oldBoot, restartsBefore: n.vm.ConsoleCount(restartingLine)}
	var octx context.Context
	octx, r.stop = context.WithCancel(ctx)
	t.Cleanup(r.stop)
	observe(octx, n, r.tl, oldBoot, oldDetector, r.restartsBefore)

	// unattended-upgrades' hook: a pod with the host's /var/run. It
	// reports the file's modification time (the VM's clock, nanoseconds,
	// the kernel's coarse clock: a few ms) as its termination message.
	if err := runPod(t, ctx, n, "sentinel", corev1.Container{
		Command: []string{"/bin/busybox", "sh", "-c", "/bin/busybox touch " + vmSentinel +
			" && /bin/busybox stat -c %y " + vmSentinel + " > /dev/termination-log"},
		VolumeMounts: []corev1.VolumeMount{{Name: "run", MountPath: "/host/var/run"}},
	}, corev1.Volume{Name: "run", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run"}}}); err != nil {
		t.Fatal(err)
	}
	r.tl.mark(stSentinel, "")
	go markFileCreated(octx, n, r.tl)
	return r
}

// vmSentinel is /var/run/reboot-required as the test's pods mount it.
const vmSentinel = "/host/var/run/reboot-required"

// markFileCreated marks when the sentinel pod created the file, by the
// file's modification time on the VM's clock translated to the machine's
// with the clock offset measured right after.
func markFileCreated(ctx context.Context, n *node, tl *timeline) {
	lw := cache.NewFilteredListWatchFromClient(n.c.Client.CoreV1().RESTClient(), "pods", workloadNS,
		func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=sentinel" })
	var msg string
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(e watch.Event) (bool, error) {
		p, ok := e.Object.(*corev1.Pod)
		if !ok || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Terminated == nil {
			return false, nil
		}
		msg = p.Status.ContainerStatuses[0].State.Terminated.Message
		return true, nil
	})
	if err != nil {
		return
	}
	mtime, err := time.Parse("2006-01-02 15:04:05.999999999 -0700", strings.TrimSpace(msg))
	if err != nil {
		tl.mark(stFile+" unreadable", fmt.Sprintf("%q: %v", msg, err))
		return
	}
	offset, unc, err := n.vm.ClockOffset(ctx)
	if err != nil {
		tl.mark(stFile+" unreadable", err.Error())
		return
	}
	tl.markAt(stFile, fmt.Sprintf("VM clock %+.3fs from the machine's, ±%dms", offset.Seconds(), unc.Milliseconds()), mtime.Add(-offset))
}

// runPod creates a busybox pod on the VM node (deleting an earlier one of
// the name first) and returns once it is created.
func runPod(t *testing.T, ctx context.Context, n *node, name string, c corev1.Container, vols ...corev1.Volume) error {
	t.Helper()
	return runPodSpec(t, ctx, n, name, corev1.PodSpec{Containers: []corev1.Container{c}, Volumes: vols})
}

// runPodSpec is runPod for a pod spec of one container (hostPID, a pod
// securityContext): the container runs busybox, on the VM node, once.
func runPodSpec(t *testing.T, ctx context.Context, n *node, name string, spec corev1.PodSpec) error {
	t.Helper()
	cs := n.c.Client
	c := &spec.Containers[0]
	c.Name, c.Image, c.ImagePullPolicy = name, n.busybx, corev1.PullNever
	spec.NodeName, spec.RestartPolicy = vmNode, corev1.RestartPolicyNever
	spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: workloadNS}, Spec: spec}
	_ = cs.CoreV1().Pods(workloadNS).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	waitPods(t, ctx, n, workloadNS, "", "an earlier pod "+name+" gone", func(ps []corev1.Pod) bool {
		return !slices.ContainsFunc(ps, func(p corev1.Pod) bool { return p.Name == name })
	})
	_, err := cs.CoreV1().Pods(workloadNS).Create(ctx, pod, metav1.CreateOptions{})
	return err
}

// follow waits for the reboot's end and checks what was observed.
func (r *run) follow(t *testing.T, ctx context.Context) {
	t.Helper()
	defer r.stop()
	n, method, tl, oldBoot, restartsBefore := r.n, r.method, r.tl, r.oldBoot, r.restartsBefore
	wctx, wcancel := context.WithTimeout(ctx, 25*time.Minute)
	defer wcancel()
	for !tl.has(stDone) || !tl.has(stDetectorBack) || !tl.has(stCondFalse) || !tl.has(stVMNewBoot) {
		select {
		case <-wctx.Done():
			t.Fatalf("%s: the pipeline did not finish: %v\n%s", method, wctx.Err(), tl)
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Logf("%s: old boot ID %s (VM), new boot ID %s (VM)\n%s", method, oldBoot, stepDetail(tl, stVMNewBoot), tl)
	t.Logf("%s: %s", method, summary(tl))
	writeResult(t, method, oldBoot, stepDetail(tl, stVMNewBoot), tl)

	// The order the contract promises.
	order := []string{stSentinel, stCondTrue, stCordon, stDrained, stAuthorized, stKernelDown, stRestarting, stVMNewBoot, stReady, stUncordon}
	for i := 1; i < len(order); i++ {
		a, okA := tl.get(order[i-1])
		b, okB := tl.get(order[i])
		if !okA || !okB {
			t.Errorf("not observed: %q (%v) or %q (%v)", order[i-1], okA, order[i], okB)
			continue
		}
		if b.at.Before(a.at) {
			t.Errorf("%q at %s before %q at %s", order[i], b.at.Sub(tl.start), order[i-1], a.at.Sub(tl.start))
		}
	}
	// The kubelet's graceful node shutdown needs logind's
	// PrepareForShutdown: a reboot through logind (dbus, and systemctl
	// reboot for command) has it; SIGRTMIN+5 to systemd does not.
	if graceful := tl.has(stGraceful); graceful != !strings.HasPrefix(method, "signal") {
		t.Errorf("%s: the kubelet's graceful node shutdown observed: %v", method, graceful)
	}
	newBoot := stepDetail(tl, stVMNewBoot)
	if kb := stepDetail(tl, stKubeletBoot); kb != newBoot {
		t.Errorf("the kubelet reports boot ID %s, the VM says %s", kb, newBoot)
	}
	if auth := stepDetail(tl, stAuthorized); auth != oldBoot {
		t.Errorf("authorized boot ID %s, the VM's was %s", auth, oldBoot)
	}
	// Exactly one reboot: one more "Restarting system" on the console, and
	// the VM still on the new boot.
	if got := n.vm.ConsoleCount(restartingLine) - restartsBefore; got != 1 {
		t.Errorf("the console shows %d restarts, want 1", got)
	}
	if id, err := n.vm.BootID(ctx); err != nil || id != newBoot {
		t.Errorf("the VM's boot ID is %s (%v), want %s: another reboot", id, err, newBoot)
	}
}

// summary is the pipeline's stages, each from the step that starts it to
// the step that ends it.
func summary(tl *timeline) string {
	var parts []string
	for _, st := range []struct{ what, from, to string }{
		{"sentinel file to condition", stFile, stCondTrue},
		{"condition to drained", stCondTrue, stDrained},
		{"drained to authorized", stDrained, stAuthorized},
		{"authorized to kernel restarting", stAuthorized, stRestarting},
		{"kernel restarting to new boot", stRestarting, stVMNewBoot},
		{"new boot to kubelet Ready", stVMNewBoot, stReady},
		{"Ready to uncordoned", stReady, stUncordon},
	} {
		a, okA := tl.get(st.from)
		b, okB := tl.get(st.to)
		if okA && okB {
			parts = append(parts, fmt.Sprintf("%s %.3fs", st.what, b.at.Sub(a.at).Seconds()))
		} else {
			parts = append(parts, st.what+" not observed")
		}
	}
	return strings.Join(parts, "; ")
}

func stepDetail(tl *timeline, name string) string {
	s, _ := tl.get(name)
	return s.detail
}

// result is one method's run, a line of $NODEREBOOT_NODE_RESULTS.
type result struct {
	Time      time.Time `json:"time"`
	Method    string    `json:"method"`
	OldBootID string    `json:"old_boot_id"`
	NewBootID string    `json:"new_boot_id"`
	// Steps are seconds after the sentinel pod's creation.
	Steps []resultStep `json:"steps"`
}

type resultStep struct {
	Step    string  `json:"step"`
	Seconds float64 `json:"seconds"`
	Detail  string  `json:"detail,omitempty"`
}

// writeResult appends the run to $NODEREBOOT_NODE_RESULTS, if set.
func writeResult(t *testing.T, method, oldBoot, newBoot string, tl *timeline) {
	t.Helper()
	p := os.Getenv("NODEREBOOT_NODE_RESULTS")
	if p == "" {
		return
	}
	r := result{Time: time.Now().UTC(), Method: method, OldBootID: oldBoot, NewBootID: newBoot}
	sentinel, _ := tl.get(stSentinel)
	tl.mu.Lock()
	for _, s := range tl.steps {
		r.Steps = append(r.Steps, resultStep{Step: s.name, Seconds: s.at.Sub(sentinel.at).Round(10 * time.Millisecond).Seconds(), Detail: s.detail})
	}
	tl.mu.Unlock()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}
