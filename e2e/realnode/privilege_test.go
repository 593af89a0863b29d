package realnode

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// setDetector changes the detector DaemonSet's pod template and waits until
// the VM node's detector has the new template (and is Ready, if ready).
func setDetector(t *testing.T, ctx context.Context, n *node, ready bool, change func(*corev1.PodSpec)) {
	t.Helper()
	dsc := n.c.Client.AppsV1().DaemonSets(systemNS)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := dsc.Get(ctx, "nodereboot-detector", metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(&cur.Spec.Template.Spec)
		_, err = dsc.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitDetectorTemplate(t, ctx, n, ready)
}

// waitDetectorTemplate waits until the VM node's detector pod has the
// DaemonSet's current template (and is Ready, if ready). A DaemonSet
// replaces a node's pod only once the old one is gone: from then on, what
// the detector does is the new pod's.
func waitDetectorTemplate(t *testing.T, ctx context.Context, n *node, ready bool) {
	t.Helper()
	ds, err := n.c.Client.AppsV1().DaemonSets(systemNS).Get(ctx, "nodereboot-detector", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gen := strconv.FormatInt(ds.Generation, 10)
	waitPods(t, ctx, n, systemNS, "app.kubernetes.io/component=detector,pod-template-generation="+gen, "the detector's new template on "+vmNode,
		func(ps []corev1.Pod) bool {
			for _, p := range ps {
				// A detector that may reboot at once is not waited for
				// Ready: it may go down first.
				if p.Spec.NodeName == vmNode && p.DeletionTimestamp == nil && (podReady(&p) || !ready) {
					return true
				}
			}
			return false
		})
}

// rebootFailures are the RebootFailed events on the VM node, by name, with
// their counts: a later failure is a new event or a higher count (the
// recorder aggregates repeats of one process; a new process writes a new
// event). No clocks compared: the events carry the VM's.
func rebootFailures(ctx context.Context, n *node) (map[string]int32, []corev1.Event) {
	sel := fields.Set{"involvedObject.kind": "Node", "involvedObject.name": vmNode, "reason": "RebootFailed"}.AsSelector().String()
	evs, err := n.c.Client.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, nil
	}
	m := map[string]int32{}
	for _, e := range evs.Items {
		m[e.Name] = e.Count
	}
	return m, evs.Items
}

// newRebootFailed returns the message of a RebootFailed event recorded
// after before was taken, if there is one.
func newRebootFailed(ctx context.Context, n *node, before map[string]int32) (string, bool) {
	_, evs := rebootFailures(ctx, n)
	for _, e := range evs {
		if c, ok := before[e.Name]; !ok || e.Count > c {
			return e.Message, true
		}
	}
	return "", false
}

// waitRebootFailed waits for a RebootFailed event recorded after before
// was taken and returns its message.
func waitRebootFailed(t *testing.T, ctx context.Context, n *node, before map[string]int32) string {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for {
		if m, ok := newRebootFailed(wctx, n, before); ok {
			return m
		}
		select {
		case <-wctx.Done():
			t.Fatalf("no RebootFailed event: %v", wctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// podOutput runs a busybox pod of the spec on the VM node and returns
// whether it exited 0 and its termination message.
func podOutput(t *testing.T, ctx context.Context, n *node, name string, spec corev1.PodSpec) (bool, string) {
	t.Helper()
	if err := runPodSpec(t, ctx, n, name, spec); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, ctx, n, workloadNS, "", "pod "+name+" finished", func(ps []corev1.Pod) bool {
		return slices.ContainsFunc(ps, func(p corev1.Pod) bool {
			return p.Name == name && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed)
		})
	})
	for _, p := range pods {
		if p.Name == name {
			msg := ""
			if cs := p.Status.ContainerStatuses; len(cs) == 1 && cs[0].State.Terminated != nil {
				msg = cs[0].State.Terminated.Message
			}
			return p.Status.Phase == corev1.PodSucceeded, msg
		}
	}
	return false, ""
}

// reachScript prints, one per line, name=yes or name=no for what a
// container reaches on the host. connect(2) on a Unix socket needs write
// permission on it: busybox's test -w checks the mode bits for a user other
// than root (root owns the sockets here, and test -w is true for root).
// Through /proc/1/root: the host's root, for containers with hostPID (a
// ptrace access check against PID 1).
const reachScript = `r() { if eval "$2" >/dev/null 2>&1; then echo "$1=yes"; else echo "$1=no"; fi; }
{
r host-var-run 'ls /host/var/run/systemd'
r runtime-socket-exists 'test -S /host/var/run/containerd/containerd.sock'
r runtime-socket 'test -w /host/var/run/containerd/containerd.sock || test -w /proc/1/root/run/containerd/containerd.sock'
r other-rootfs 'ls /host/var/run/containerd/io.containerd.runtime.v2.task/k8s.io/*/rootfs/pause || ls /proc/1/root/run/containerd/io.containerd.runtime.v2.task/k8s.io/*/rootfs/pause'
r kubelet-dir 'ls /host/var/lib/kubelet/pods || ls /proc/1/root/var/lib/kubelet/pods'
r host-root 'ls /proc/1/root/etc/kubernetes'
r bus-socket 'test -w /host/var/run/dbus/system_bus_socket'
} > /dev/termination-log`

// reach runs reachScript in a pod made like one container of the installed
// detector DaemonSet (its pod's hostPID and securityContext, the
// container's securityContext and mounts, the volumes those use) and
// returns what it reached.
func reach(t *testing.T, ctx context.Context, n *node, name, container string) map[string]bool {
	t.Helper()
	ds, err := n.c.Client.AppsV1().DaemonSets(systemNS).Get(ctx, "nodereboot-detector", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := ds.Spec.Template.Spec
	i := slices.IndexFunc(tmpl.Containers, func(c corev1.Container) bool { return c.Name == container })
	if i < 0 {
		t.Fatalf("the detector DaemonSet has no container %s", container)
	}
	dc := tmpl.Containers[i]
	spec := corev1.PodSpec{HostPID: tmpl.HostPID, SecurityContext: tmpl.SecurityContext,
		Containers: []corev1.Container{{Command: []string{"/bin/busybox", "sh", "-c", reachScript},
			SecurityContext: dc.SecurityContext, VolumeMounts: dc.VolumeMounts}}}
	for _, v := range tmpl.Volumes {
		if slices.ContainsFunc(dc.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == v.Name }) {
			spec.Volumes = append(spec.Volumes, v)
		}
	}
	ok, out := podOutput(t, ctx, n, name, spec)
	got := map[string]bool{}
	for line := range strings.Lines(out) {
		if k, v, found := strings.Cut(strings.TrimSpace(line), "="); found {
			got[k] = v == "yes"
		}
	}
	if !ok || len(got) != 7 {
		t.Fatalf("%s: the probe like the %s container failed or said %q", name, container, out)
	}
	t.Logf("like the detector pod's %s container (%s): %s", container, name, strings.Join(strings.Fields(out), " "))
	return got
}

// expectReach compares what a probe reached with what it may reach.
func expectReach(t *testing.T, what string, got map[string]bool, want map[string]bool) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s reachable: %v, want %v", what, k, got[k], w)
		}
	}
}

// detectorSecurity is the securityContext of the reboot-signal and
// reboot-dbus components: root, nothing else.
func detectorSecurity(add ...corev1.Capability) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		Privileged: ptr.To(false), AllowPrivilegeEscalation: ptr.To(false),
		RunAsUser: ptr.To[int64](0), RunAsNonRoot: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: add},
	}
}

// TestLeastPrivilege: each reboot method's privileges, on a real runtime and
// a real kernel: a privilege the method does not need is removed and the
// node still reboots; one it needs is removed and the reboot fails, then the
// same authorization reboots the node once it is given back.
func TestLeastPrivilege(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Minute)
	defer cancel()
	n := startNode(t, ctx)
	install(t, ctx, n)
	startController(t, ctx, n)
	workload(t, ctx, n)

	// What each container of the detector pod reaches on the host, as
	// installed: the sentinel container sees the sentinel's folder and
	// nothing it could use of what else is there; the detector container
	// of signal and dbus reaches neither the runtime nor other containers
	// nor the kubelet's files (dbus: the system bus alone).
	t.Run("what-each-container-reaches", func(t *testing.T) {
		nothing := map[string]bool{"host-var-run": false, "runtime-socket": false, "other-rootfs": false, "kubelet-dir": false, "host-root": false}
		sentinel := maps.Clone(nothing)
		// The host's /var/run (the sentinel's folder) is there, and the
		// runtime's socket in it to see, not to connect to.
		sentinel["host-var-run"], sentinel["runtime-socket-exists"] = true, true
		for _, m := range []struct{ method, component string }{{"command", ""}, {"signal", "reboot-signal"}, {"dbus", "reboot-dbus"}} {
			var comps []string
			if m.component != "" {
				comps = append(comps, m.component)
			}
			install(t, ctx, n, comps...)
			expectReach(t, m.method+": sentinel container", reach(t, ctx, n, "reach-sentinel-"+m.method, "sentinel"), sentinel)
			det := reach(t, ctx, n, "reach-detector-"+m.method, "detector")
			switch m.method {
			case "command":
				// nsenter into PID 1's namespaces is the method: the
				// host's root is reachable through /proc/1/root too.
				if !det["host-root"] {
					t.Errorf("command: the detector container does not reach the host's root through /proc/1/root")
				}
			case "signal":
				expectReach(t, "signal: detector container", det, nothing)
			case "dbus":
				want := maps.Clone(nothing)
				want["bus-socket"] = true
				expectReach(t, "dbus: detector container", det, want)
			}
		}
	})

	// Linux lets a process signal another of the same user without
	// CAP_KILL: uid 0 signals PID 1 (systemd, uid 0) with no capability.
	t.Run("signal-without-CAP_KILL", func(t *testing.T) {
		install(t, ctx, n, "reboot-signal")
		setDetector(t, ctx, n, true, func(s *corev1.PodSpec) { s.Containers[0].SecurityContext = detectorSecurity() })
		trigger(t, ctx, n, "signal").follow(t, ctx)
	})

	// command: nsenter into PID 1's mount namespace fails with no
	// capability, and without any one of CAP_SYS_ADMIN and CAP_SYS_CHROOT
	// (what setns(CLONE_NEWNS) checks) and CAP_SYS_PTRACE (opening
	// /proc/1/ns/mnt is a ptrace access check, and PID 1 holds capabilities
	// the detector does not). With the manifests' three, the same
	// authorization reboots.
	t.Run("command-capabilities", func(t *testing.T) {
		install(t, ctx, n)
		setDetector(t, ctx, n, true, func(s *corev1.PodSpec) { s.Containers[0].SecurityContext = detectorSecurity() })
		before, _ := rebootFailures(ctx, n)
		r := trigger(t, ctx, n, "command")
		t.Logf("command, no capability: %s", waitRebootFailed(t, ctx, n, before))
		for _, caps := range [][]corev1.Capability{{"SYS_ADMIN", "SYS_CHROOT"}, {"SYS_CHROOT", "SYS_PTRACE"}, {"SYS_ADMIN", "SYS_PTRACE"}} {
			setDetector(t, ctx, n, false, func(s *corev1.PodSpec) { s.Containers[0].SecurityContext = detectorSecurity(caps...) })
			before, _ := rebootFailures(ctx, n)
			t.Logf("command, %v only: %s", caps, waitRebootFailed(t, ctx, n, before))
		}
		// deploy/ as it is: CAP_SYS_ADMIN, CAP_SYS_CHROOT, CAP_SYS_PTRACE.
		install(t, ctx, n)
		waitDetectorTemplate(t, ctx, n, false)
		before, _ = rebootFailures(ctx, n)
		// Either the node reboots, or the detector says why not.
		for !r.tl.has(stVMNewBoot) {
			if m, ok := newRebootFailed(ctx, n, before); ok {
				t.Fatalf("command with the manifests' capabilities: %s", m)
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(time.Second):
			}
		}
		r.method = "command-capabilities"
		r.follow(t, ctx)
	})

	// dbus without the bus: the reboot fails; given back, the same
	// authorization reboots.
	t.Run("dbus-without-the-bus", func(t *testing.T) {
		install(t, ctx, n, "reboot-dbus")
		setDetector(t, ctx, n, true, func(s *corev1.PodSpec) {
			for i, v := range s.Volumes {
				if v.Name == "host-dbus" {
					s.Volumes[i].HostPath = &corev1.HostPathVolumeSource{Path: "/var/run/nodereboot-no-bus", Type: ptr.To(corev1.HostPathDirectoryOrCreate)}
				}
			}
		})
		before, _ := rebootFailures(ctx, n)
		r := trigger(t, ctx, n, "dbus")
		msg := waitRebootFailed(t, ctx, n, before)
		t.Logf("dbus, no system bus: %s", msg)
		install(t, ctx, n, "reboot-dbus")
		r.method = "dbus-given-back"
		r.follow(t, ctx)
	})
}
