package detector_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/nodesim"
	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/sentinel"
)

const (
	systemNS       = "nodereboot-system"
	serviceAccount = "nodereboot-detector"
	condType       = contract.DefaultConditionType
)

var detectorBin, repoRoot string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	root, err := framework.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	bins, err := framework.BuildBinaries("", "nodereboot-detector")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer bins.Remove()
	detectorBin = bins.Path("nodereboot-detector")
	return m.Run()
}

// env is a cluster with the detector's RBAC applied and a kubeconfig of its
// service account.
type env struct {
	c          *framework.Cluster
	kubeconfig string
}

func setup(t *testing.T, nodes int) *env {
	t.Helper()
	c := framework.StartCluster(t, framework.Options{Nodes: nodes})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kc, _, err := c.ServiceAccountKubeconfig(ctx, systemNS, serviceAccount)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.Kubectl(ctx, "apply", "-f", filepath.Join(repoRoot, "deploy", "rbac", "detector-clusterrole.yaml")); err != nil {
		t.Fatalf("apply RBAC: %v\n%s", err, out)
	}
	return &env{c: c, kubeconfig: kc}
}

// host starts the simulated host of a node with the real detector as its
// agent, running as the detector's service account.
func (e *env) host(t *testing.T, node string, extra ...string) *nodesim.Node {
	t.Helper()
	return nodesim.Start(t, e.c, nodesim.Config{
		NodeName:    node,
		RebootDelay: time.Second,
		Agent: func(n *nodesim.Node) (string, []string) {
			args := []string{
				"--kubeconfig=" + e.kubeconfig,
				"--node-name=" + node,
				"--boot-id-file=" + n.BootIDFile(),
				"--sentinel=" + n.SentinelPath(),
				"--reboot-command=" + n.RebootCommand(),
				"--host-mount-namespace=false",
				"--metrics-bind-address=0",
				"--health-probe-bind-address=0",
				"-v=4",
			}
			return detectorBin, append(args, extra...)
		},
	})
}

func condition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if string(n.Status.Conditions[i].Type) == condType {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func hasCondition(status corev1.ConditionStatus, reason string) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool {
		c := condition(n)
		return c != nil && c.Status == status && (reason == "" || c.Reason == reason)
	}
}

// waitEvent watches the node's events in namespace default until one with
// the reason whose message contains msg appears.
func waitEvent(ctx context.Context, t *testing.T, client kubernetes.Interface, node, reason, msg string) *corev1.Event {
	t.Helper()
	sel := fields.Set{"involvedObject.kind": "Node", "involvedObject.name": node, "reason": reason}.AsSelector()
	lw := cache.NewListWatchFromClient(client.CoreV1().RESTClient(), "events", metav1.NamespaceDefault, sel)
	ev, err := watchtools.UntilWithSync(ctx, lw, &corev1.Event{}, nil, func(e watch.Event) (bool, error) {
		if e.Type == watch.Deleted {
			return false, nil
		}
		return strings.Contains(e.Object.(*corev1.Event).Message, msg), nil
	})
	if err != nil {
		t.Fatalf("no %s event on node %s with %q: %v", reason, node, msg, err)
	}
	return ev.Object.(*corev1.Event)
}

func annotate(ctx context.Context, t *testing.T, c *framework.Cluster, node, key, value string) {
	t.Helper()
	if out, err := c.Kubectl(ctx, "annotate", "node", node, "--overwrite", key+"="+value); err != nil {
		t.Fatalf("annotate: %v\n%s", err, out)
	}
}

// authorize plays the controller's authorization of boot: one patch that
// cordons the node and writes reboot-authorized, state Authorized and the
// state-reason naming the boot (the detector reboots on nothing less).
func authorize(ctx context.Context, t *testing.T, c *framework.Cluster, node, boot string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"unschedulable":true},"metadata":{"annotations":{%q:%q,%q:%q,%q:%q}}}`,
		contract.AnnotationRebootAuthorized, boot, contract.AnnotationState, contract.StateAuthorized,
		contract.AnnotationStateReason, contract.AuthorizedReason(boot))
	if out, err := c.Kubectl(ctx, "patch", "node", node, "--type=merge", "-p", patch); err != nil {
		t.Fatalf("authorize: %v\n%s", err, out)
	}
}

func TestDetector(t *testing.T) {
	e := setup(t, 7)

	t.Run("SentinelMovesConditionAndRecordsEvents", func(t *testing.T) {
		const node = "node-0"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		metrics, health := freeAddr(t), freeAddr(t)
		sim := e.host(t, node, "--metrics-bind-address="+metrics, "--health-probe-bind-address="+health)
		c := e.c
		if _, err := c.WaitForNode(ctx, node, hasCondition(corev1.ConditionFalse, sentinel.ReasonSentinelAbsent)); err != nil {
			t.Fatal(err)
		}
		// Ready once the condition is written. The watch can show the write
		// before the detector has handled the response, and an HTTP probe
		// has no watch: poll it, with a deadline.
		var code int
		var body string
		if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			code, body = get(t, "http://"+health+"/readyz?verbose")
			return code == http.StatusOK, nil
		}); err != nil {
			t.Errorf("/readyz after the first condition: %d\n%s", code, body)
		}
		waitEvent(ctx, t, c.Client, node, contract.ReasonRebootNotRequired, "is absent")

		// Latency from the file to the condition on the API, seen through
		// one watch opened before the first change. Changes come at most
		// 4 a second: each costs a patch and an event, and the default
		// client rate limit (10/s) is not what is measured here.
		w := watchNode(ctx, t, c.Client, node)
		pace := time.NewTicker(250 * time.Millisecond)
		defer pace.Stop()
		var latencies []time.Duration
		for i := range 10 {
			for _, step := range []struct {
				change func() error
				want   func(*corev1.Node) bool
			}{
				{sim.CreateSentinel, hasCondition(corev1.ConditionTrue, sentinel.ReasonSentinelPresent)},
				{sim.RemoveSentinel, hasCondition(corev1.ConditionFalse, sentinel.ReasonSentinelAbsent)},
			} {
				<-pace.C
				start := time.Now()
				if err := step.change(); err != nil {
					t.Fatal(err)
				}
				if err := w.until(ctx, step.want); err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
				latencies = append(latencies, time.Since(start))
			}
		}
		w.Stop()
		sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
		median, p90, slowest := latencies[len(latencies)/2], latencies[len(latencies)*9/10], latencies[len(latencies)-1]
		t.Logf("sentinel -> condition on the API over %d changes: min %v, median %v, p90 %v, max %v",
			len(latencies), latencies[0], median, p90, slowest)
		if p90 > 250*time.Millisecond || slowest > 2*time.Second {
			t.Errorf("sentinel -> condition: p90 %v (want < 250ms), max %v (want < 2s, allowing for a busy machine)", p90, slowest)
		}

		// Debian's package list shows in the message.
		if err := os.WriteFile(sim.SentinelPath()+sentinel.PackagesSuffix, []byte("linux-image-6.1.0-30-amd64\nlibc6\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := sim.CreateSentinel(); err != nil {
			t.Fatal(err)
		}
		n, err := c.WaitForNode(ctx, node, func(n *corev1.Node) bool {
			cond := condition(n)
			// The observation, then the boot it was observed in.
			return cond != nil && cond.Status == corev1.ConditionTrue &&
				strings.HasSuffix(cond.Message, contract.ConditionMessage("required by linux-image-6.1.0-30-amd64, libc6", sim.BootID()))
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := nodesim.ReadyCondition(n); r == nil || r.Status != corev1.ConditionTrue {
			t.Fatalf("the node's Ready condition was disturbed: %+v", r)
		}
		// The condition's writer is named in managedFields, on the status
		// subresource.
		managed := false
		for _, f := range n.ManagedFields {
			managed = managed || (f.Manager == contract.DetectorComponent && f.Subresource == "status")
		}
		if !managed {
			t.Errorf("no managedFields entry of %s on status: %+v", contract.DetectorComponent, n.ManagedFields)
		}
		waitEvent(ctx, t, c.Client, node, contract.ReasonRebootRequired, "linux-image-6.1.0-30-amd64")
		if got := scrape(t, metrics, "nodereboot_detector_reboot_required"); got != 1 {
			t.Errorf("nodereboot_detector_reboot_required = %v, want 1", got)
		}

		// What a person sees.
		out, err := c.Kubectl(ctx, "get", "events", "-A", "--field-selector", "involvedObject.kind=Node,involvedObject.name="+node,
			"-o", "custom-columns=REASON:.reason,SOURCE:.source.component,TYPE:.type", "--no-headers")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{contract.ReasonRebootRequired, contract.ReasonRebootNotRequired, contract.DetectorComponent} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl get events does not show %s:\n%s", want, out)
			}
		}
		describe, err := c.Kubectl(ctx, "describe", "node", node)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{condType, sentinel.ReasonSentinelPresent, contract.ReasonRebootRequired, contract.ReasonRebootNotRequired} {
			if !strings.Contains(describe, want) {
				t.Errorf("kubectl describe node does not show %s:\n%s", want, describe)
			}
		}
		if len(sim.Reboots()) != 0 {
			t.Fatal("rebooted without an authorization")
		}
	})

	t.Run("AuthorizedRebootHappensOnce", func(t *testing.T) {
		const node = "node-1"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		sim := e.host(t, node)
		c := e.c
		if err := sim.CreateSentinel(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitForNode(ctx, node, hasCondition(corev1.ConditionTrue, "")); err != nil {
			t.Fatal(err)
		}
		oldBoot := sim.BootID()
		authorize(ctx, t, c, node, oldBoot)
		reboots, err := sim.WaitForReboots(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		newBoot := reboots[0].NewBootID
		waitEvent(ctx, t, c.Client, node, contract.ReasonRebooting, oldBoot)
		waitEvent(ctx, t, c.Client, node, contract.ReasonRebooted, oldBoot+" -> "+newBoot)
		// The reboot cleared /var/run: the new detector reports False and
		// removed its annotation; the controller's authorization is left
		// to the controller.
		n, err := c.WaitForNode(ctx, node, func(n *corev1.Node) bool {
			_, rebooting := n.Annotations[contract.AnnotationRebooting]
			return hasCondition(corev1.ConditionFalse, sentinel.ReasonSentinelAbsent)(n) && !rebooting
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Annotations[contract.AnnotationRebootAuthorized]; got != oldBoot {
			t.Fatalf("authorization %q, want it untouched (%q)", got, oldBoot)
		}
		// A sync point for the new detector: it has seen the stale
		// authorization (the node above carries it) and a later change.
		annotate(ctx, t, c, node, "e2e.nodereboot.io/sync", "1")
		if err := sim.CreateSentinel(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitForNode(ctx, node, hasCondition(corev1.ConditionTrue, "")); err != nil {
			t.Fatal(err)
		}
		if got := sim.Reboots(); len(got) != 1 {
			t.Fatalf("%d reboots for one authorization, want 1: %+v", len(got), got)
		}
		events, err := c.Client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
			FieldSelector: fields.Set{"involvedObject.name": node, "reason": contract.ReasonInvalidAnnotation}.String()})
		if err != nil || len(events.Items) != 0 {
			t.Fatalf("the stale authorization was reported invalid: %v %v", events, err)
		}
	})

	t.Run("NonMatchingAuthorizationNeverReboots", func(t *testing.T) {
		const node = "node-2"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		sim := e.host(t, node)
		c := e.c
		if _, err := c.WaitForNode(ctx, node, hasCondition(corev1.ConditionFalse, "")); err != nil {
			t.Fatal(err)
		}
		for _, value := range []string{"yes", string(uuid.NewUUID())} {
			annotate(ctx, t, c, node, contract.AnnotationRebootAuthorized, value)
			ev := waitEvent(ctx, t, c.Client, node, contract.ReasonInvalidAnnotation, strconv.Quote(value))
			if ev.Type != corev1.EventTypeWarning {
				t.Fatalf("InvalidAnnotation event of type %s", ev.Type)
			}
		}
		// The event comes from the same decision that refused to reboot.
		if got := sim.Reboots(); len(got) != 0 {
			t.Fatalf("rebooted on a non-matching authorization: %+v", got)
		}
		n, err := c.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := n.Annotations[contract.AnnotationRebooting]; ok {
			t.Fatal("rebooting annotation written for a non-matching authorization")
		}
	})

	t.Run("SentinelCommandExiting127IsUnknown", func(t *testing.T) {
		const node = "node-3"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		script := filepath.Join(t.TempDir(), "check-reboot")
		if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'needs-restarting: command not found' >&2\nexit 127\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		sim := e.host(t, node, "--sentinel-command="+script, "--sentinel-command-period=2s")
		c := e.c
		// Even with the sentinel file present: the command replaces it.
		if err := sim.CreateSentinel(); err != nil {
			t.Fatal(err)
		}
		n, err := c.WaitForNode(ctx, node, hasCondition(corev1.ConditionUnknown, sentinel.ReasonCommandFailed))
		if err != nil {
			t.Fatal(err)
		}
		if msg := condition(n).Message; !strings.Contains(msg, "exited 127") || !strings.Contains(msg, "command not found") {
			t.Errorf("message %q does not say what happened", msg)
		}
		ev := waitEvent(ctx, t, c.Client, node, contract.ReasonRebootUnknown, "exited 127")
		if ev.Type != corev1.EventTypeWarning {
			t.Errorf("event type %s, want Warning", ev.Type)
		}
		if got := sim.Reboots(); len(got) != 0 {
			t.Fatalf("rebooted: %+v", got)
		}
	})

	t.Run("RebootOnlyModeWritesNoCondition", func(t *testing.T) {
		const node = "node-4"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		sim := e.host(t, node, "--detection=false")
		c := e.c
		if err := sim.CreateSentinel(); err != nil {
			t.Fatal(err)
		}
		oldBoot := sim.BootID()
		authorize(ctx, t, c, node, oldBoot)
		reboots, err := sim.WaitForReboots(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		// The detector after the boot has acted on the node: Rebooted.
		waitEvent(ctx, t, c.Client, node, contract.ReasonRebooted, oldBoot+" -> "+reboots[0].NewBootID)
		n, err := c.WaitForNode(ctx, node, func(n *corev1.Node) bool {
			_, ok := n.Annotations[contract.AnnotationRebooting]
			return !ok
		})
		if err != nil {
			t.Fatal(err)
		}
		if cond := condition(n); cond != nil {
			t.Fatalf("--detection=false wrote the condition: %+v", cond)
		}
		events, err := c.Client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
			FieldSelector: fields.Set{"involvedObject.name": node, "reason": contract.ReasonRebootRequired}.String()})
		if err != nil || len(events.Items) != 0 {
			t.Fatalf("--detection=false recorded RebootRequired events: %v %v", events, err)
		}
	})

	t.Run("InterruptedRebootIsIssuedAgain", func(t *testing.T) {
		const node = "node-5"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c := e.c
		// A detector wrote rebooting and was killed before the reboot: the
		// boot ID is still the authorized one.
		n, err := c.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		boot := n.Status.NodeInfo.BootID
		authorize(ctx, t, c, node, boot)
		annotate(ctx, t, c, node, contract.AnnotationRebooting, boot)
		sim := e.host(t, node)
		if sim.BootID() != boot {
			t.Fatalf("simulator boot ID %s, node %s", sim.BootID(), boot)
		}
		reboots, err := sim.WaitForReboots(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if reboots[0].OldBootID != boot {
			t.Fatalf("reboot %+v", reboots[0])
		}
		waitEvent(ctx, t, c.Client, node, contract.ReasonRebooting, "issued again")
		waitEvent(ctx, t, c.Client, node, contract.ReasonRebooted, boot+" -> "+reboots[0].NewBootID)
	})

	t.Run("ServiceAccountIsLeastPrivilege", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := e.c
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"get", "secrets", "-A"}, "no"},
			{[]string{"list", "pods", "-A"}, "no"},
			{[]string{"delete", "nodes"}, "no"},
			{[]string{"update", "nodes"}, "no"},
			{[]string{"create", "events.events.k8s.io", "-n", "default"}, "no"},
			{[]string{"watch", "nodes"}, "yes"},
			{[]string{"patch", "nodes/status"}, "yes"},
			{[]string{"patch", "nodes"}, "yes"},
			{[]string{"create", "events", "-n", "default"}, "yes"},
		} {
			out, _ := c.KubectlAs(ctx, e.kubeconfig, append([]string{"auth", "can-i"}, tc.args...)...)
			// The answer is the last line (a warning may precede it).
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if got := strings.TrimSpace(lines[len(lines)-1]); got != tc.want {
				t.Errorf("can-i %v: %q, want %q", tc.args, got, tc.want)
			}
		}
		// And a real request.
		_, cfg, err := c.ServiceAccountKubeconfig(ctx, systemNS, serviceAccount)
		if err != nil {
			t.Fatal(err)
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("listing secrets as the detector: %v, want 403 Forbidden", err)
		}
		_, err = client.CoreV1().Nodes().Patch(ctx, "node-0", types.StrategicMergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatalf("dry-run patch of a node as the detector: %v", err)
		}
	})

	// Last: it stops the API server under everything.
	t.Run("APIServerRestartIsSurvived", func(t *testing.T) {
		const node = "node-6"
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		sim := e.host(t, node)
		c := e.c
		if _, err := c.WaitForNode(ctx, node, hasCondition(corev1.ConditionFalse, "")); err != nil {
			t.Fatal(err)
		}
		c.APIServer.Stop(10 * time.Second)
		// The change happens while the API server is down.
		if err := sim.CreateSentinel(); err != nil {
			t.Fatal(err)
		}
		if err := c.APIServer.Start(); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitForAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitForNode(ctx, node, hasCondition(corev1.ConditionTrue, sentinel.ReasonSentinelPresent)); err != nil {
			t.Fatalf("the condition did not follow the sentinel after the API server came back: %v", err)
		}
		waitEvent(ctx, t, c.Client, node, contract.ReasonRebootRequired, "is present")
		if !sim.Agent().Running() {
			t.Fatal("the detector exited while the API server was down")
		}
	})
}

// nodeWatch is one watch on one node.
type nodeWatch struct{ watch.Interface }

func watchNode(ctx context.Context, t *testing.T, client kubernetes.Interface, node string) nodeWatch {
	t.Helper()
	w, err := client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", node).String()})
	if err != nil {
		t.Fatal(err)
	}
	return nodeWatch{w}
}

// until reads events until the node satisfies cond.
func (w nodeWatch) until(ctx context.Context, cond func(*corev1.Node) bool) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch closed")
			}
			if n, isNode := ev.Object.(*corev1.Node); isNode && cond(n) {
				return nil
			}
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrape reads one sample from a /metrics endpoint.
func scrape(t *testing.T, addr, name string) float64 {
	t.Helper()
	v, err := framework.Metric(addr, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
