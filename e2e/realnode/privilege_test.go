package realnode

import (
	"context"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
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
	var ds *appsv1.DaemonSet
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := dsc.Get(ctx, "nodereboot-detector", metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(&cur.Spec.Template.Spec)
		ds, err = dsc.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
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

// waitRebootFailed waits for the detector's RebootFailed event on the VM
// node, recorded at or after since, and returns its message.
func waitRebootFailed(t *testing.T, ctx context.Context, n *node, since time.Time) string {
	t.Helper()
	sel := fields.Set{"involvedObject.kind": "Node", "involvedObject.name": vmNode, "reason": "RebootFailed"}.AsSelector().String()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for {
		evs, err := n.c.Client.CoreV1().Events("").List(wctx, metav1.ListOptions{FieldSelector: sel})
		if err == nil {
			for _, e := range evs.Items {
				if !e.LastTimestamp.Time.Before(since.Truncate(time.Second)) {
					return e.Message
				}
			}
		}
		select {
		case <-wctx.Done():
			t.Fatalf("no RebootFailed event: %v", wctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// podResult runs a busybox pod on the VM node and returns whether its
// command exited 0.
func podResult(t *testing.T, ctx context.Context, n *node, name string, c corev1.Container, vols ...corev1.Volume) bool {
	t.Helper()
	if err := runPod(t, ctx, n, name, c, vols...); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, ctx, n, workloadNS, "", "pod "+name+" finished", func(ps []corev1.Pod) bool {
		for _, p := range ps {
			if p.Name == name && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
				return true
			}
		}
		return false
	})
	for _, p := range pods {
		if p.Name == name {
			return p.Status.Phase == corev1.PodSucceeded
		}
	}
	return false
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

	// What the manifests' mount of the host's /var/run (read-only, as the
	// detector has it, root without capabilities as in reboot-dbus) reaches,
	// and what a mount of the system bus's folder alone reaches.
	t.Run("host-run-mount", func(t *testing.T) {
		hostRun := corev1.Volume{Name: "host-run", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run"}}}
		busOnly := corev1.Volume{Name: "host-run", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run/dbus"}}}
		probe := func(name, mountPath, script string, vol corev1.Volume) bool {
			return podResult(t, ctx, n, name, corev1.Container{
				Command:         []string{"/bin/busybox", "sh", "-c", script},
				SecurityContext: detectorSecurity(),
				VolumeMounts:    []corev1.VolumeMount{{Name: "host-run", MountPath: mountPath, ReadOnly: true}},
			}, vol)
		}
		runtimeSocket := "test -S /host/var/run/containerd/containerd.sock"
		// The web pods' root filesystems hold /pause.
		otherRootfs := "ls /host/var/run/containerd/io.containerd.runtime.v2.task/k8s.io/*/rootfs/pause"
		bus := "test -S /host/var/run/dbus/system_bus_socket"
		socket := probe("probe-socket", "/host/var/run", runtimeSocket, hostRun)
		rootfs := probe("probe-rootfs", "/host/var/run", otherRootfs, hostRun)
		t.Logf("with the host's /var/run mounted read-only: containerd's socket reachable: %v; other containers' root filesystems readable: %v", socket, rootfs)
		if !probe("probe-bus", "/host/var/run/dbus", bus, busOnly) {
			t.Errorf("the system bus socket is not reachable through a mount of /var/run/dbus alone")
		}
		if probe("probe-bus-socket", "/host/var/run/dbus", runtimeSocket, busOnly) || probe("probe-bus-rootfs", "/host/var/run/dbus", otherRootfs, busOnly) {
			t.Errorf("a mount of /var/run/dbus alone reaches the runtime")
		}
	})

	// Linux lets a process signal another of the same user without
	// CAP_KILL: uid 0 signals PID 1 (systemd, uid 0) with no capability.
	t.Run("signal-without-CAP_KILL", func(t *testing.T) {
		install(t, ctx, n, "reboot-signal")
		setDetector(t, ctx, n, true, func(s *corev1.PodSpec) { s.Containers[0].SecurityContext = detectorSecurity() })
		trigger(t, ctx, n, "signal").follow(t, ctx)
	})

	// command without privileged: nsenter into PID 1's mount namespace
	// fails with no capability, and with CAP_SYS_ADMIN and CAP_SYS_CHROOT
	// alone (what setns(CLONE_NEWNS) checks): opening /proc/1/ns/mnt is a
	// ptrace access check, and PID 1 holds capabilities the detector does
	// not. With CAP_SYS_PTRACE as well, the same authorization reboots.
	t.Run("command-capabilities", func(t *testing.T) {
		install(t, ctx, n)
		setDetector(t, ctx, n, true, func(s *corev1.PodSpec) { s.Containers[0].SecurityContext = detectorSecurity() })
		r := trigger(t, ctx, n, "command")
		t.Logf("command, no capability: %s", waitRebootFailed(t, ctx, n, r.tl.start))
		setDetector(t, ctx, n, false, func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = detectorSecurity("SYS_ADMIN", "SYS_CHROOT")
		})
		// The pod without capabilities is gone: a RebootFailed from now on
		// is the new pod's.
		t.Logf("command, CAP_SYS_ADMIN and CAP_SYS_CHROOT: %s", waitRebootFailed(t, ctx, n, time.Now()))
		setDetector(t, ctx, n, false, func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = detectorSecurity("SYS_ADMIN", "SYS_CHROOT", "SYS_PTRACE")
		})
		since := time.Now()
		// Either the node reboots, or the detector says why not.
		for !r.tl.has(stVMNewBoot) {
			if m, ok := rebootFailedSince(ctx, n, since); ok {
				t.Fatalf("command with CAP_SYS_ADMIN, CAP_SYS_CHROOT and CAP_SYS_PTRACE: %s", m)
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

	// dbus without the system bus: the reboot fails; given back, the same
	// authorization reboots.
	t.Run("dbus-without-the-bus", func(t *testing.T) {
		install(t, ctx, n, "reboot-dbus")
		setDetector(t, ctx, n, true, func(s *corev1.PodSpec) {
			for i, v := range s.Volumes {
				if v.Name == "host-run" {
					s.Volumes[i].HostPath = &corev1.HostPathVolumeSource{Path: "/var/run/nodereboot-no-bus", Type: ptr.To(corev1.HostPathDirectoryOrCreate)}
				}
			}
		})
		r := trigger(t, ctx, n, "dbus")
		// The sentinel is not visible either through that mount: the
		// condition comes from the reboot-requested annotation instead.
		if _, err := n.c.Kubectl(ctx, "annotate", "node", vmNode, "nodereboot.io/reboot-requested=yes", "--overwrite"); err != nil {
			t.Fatal(err)
		}
		msg := waitRebootFailed(t, ctx, n, r.tl.start)
		t.Logf("dbus, no system bus: %s", msg)
		install(t, ctx, n, "reboot-dbus")
		r.method, r.requested = "dbus-given-back", true
		r.follow(t, ctx)
	})
}

// rebootFailedSince reports a RebootFailed event recorded at or after since.
func rebootFailedSince(ctx context.Context, n *node, since time.Time) (string, bool) {
	sel := fields.Set{"involvedObject.kind": "Node", "involvedObject.name": vmNode, "reason": "RebootFailed"}.AsSelector().String()
	evs, err := n.c.Client.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return "", false
	}
	for _, e := range evs.Items {
		if !e.LastTimestamp.Time.Before(since.Truncate(time.Second)) {
			return e.Message, true
		}
	}
	return "", false
}
