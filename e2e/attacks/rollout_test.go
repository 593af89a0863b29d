package attacks

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// nodeWatch follows every version of the nodes, in the order the API server
// wrote them (one watch of one resource), and keeps the two verdicts an
// attack must not break: how many nodes were out at once (a controller
// state or our cordon), and every version where a detector committed to a
// reboot (a new `rebooting`) without the controller's authorization of
// that boot (docs/reliability.md, I1 and I2, simplified).
type nodeWatch struct {
	mu           sync.Mutex
	out          map[string]bool
	rebooting    map[string]string // the last rebooting value seen per node
	maxOut       int
	unauthorized []string
	done         chan struct{}
}

func watchNodes(ctx context.Context, t *testing.T, in *Install) *nodeWatch {
	t.Helper()
	list, err := in.Cluster.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := &nodeWatch{out: map[string]bool{}, rebooting: map[string]string{}, done: make(chan struct{})}
	for i := range list.Items {
		w.see(&list.Items[i])
	}
	wi, err := in.Cluster.Client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		for e := range wi.ResultChan() {
			if n, ok := e.Object.(*corev1.Node); ok && (e.Type == watch.Added || e.Type == watch.Modified) {
				w.see(n)
			}
		}
	}()
	t.Cleanup(func() { wi.Stop(); <-w.done })
	return w
}

func (w *nodeWatch) see(n *corev1.Node) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := n.Annotations
	_, state := a[annState]
	_, cordoned := a["nodereboot.io/cordoned-by-us"]
	w.out[n.Name] = state || cordoned
	count := 0
	for _, o := range w.out {
		if o {
			count++
		}
	}
	w.maxOut = max(w.maxOut, count)
	// The detector writes rebooting right before it reboots (its
	// commitment): the version that writes a new value must carry the
	// authorization of that boot. The controller removes the authorization
	// after the boot, before the detector removes rebooting.
	r, ok := a[annRebooting]
	if ok && r != w.rebooting[n.Name] && a[annRebootAuthorized] != r {
		w.unauthorized = append(w.unauthorized, fmt.Sprintf("%s@%s rebooting=%s reboot-authorized=%q", n.Name, n.ResourceVersion, r, a[annRebootAuthorized]))
	}
	w.rebooting[n.Name] = r
}

func (w *nodeWatch) verdict() (maxOut int, unauthorized []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxOut, append([]string(nil), w.unauthorized...)
}

// TestRolloutThroughThePolicies: the real controller (its service-account
// token) and the real detectors (tokens bound to their pods) reboot every
// node through the four policies, one at a time, each reboot authorized.
// The policies stop attackers, not nodereboot.
func TestRolloutThroughThePolicies(t *testing.T) {
	t.Parallel() // its own cluster
	in := Setup(t, Options{Nodes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := watchNodes(ctx, t, in)
	hosts := in.StartHosts(ctx, t)
	in.StartController(ctx, t, "controller-0", "--max-concurrent=1", "--drain-timeout=30s", "--reboot-timeout=60s",
		"--eviction-retry-delay=1s", "--leader-elect-lease-duration=6s", "--leader-elect-renew-deadline=4s", "--leader-elect-retry-period=1s")
	for _, h := range hosts {
		if err := h.CreateSentinel(); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range hosts {
		if _, err := h.WaitForReboots(ctx, 1); err != nil {
			t.Fatalf("%s: %v (detector log %s, controller log in %s)", h.Name(), err, h.Agent().LogFile, in.Cluster.LogDir)
		}
	}
	for _, node := range in.Nodes {
		if _, err := in.Cluster.WaitForNode(ctx, node, func(n *corev1.Node) bool {
			_, state := n.Annotations[annState]
			return !state && !n.Spec.Unschedulable
		}); err != nil {
			t.Fatalf("%s did not leave the pipeline: %v", node, err)
		}
	}
	// The controller's lifecycle conditions went through the policies:
	// every node shows them False at the end.
	for _, node := range in.Nodes {
		if _, err := in.Cluster.WaitForNode(ctx, node, lifecycleOver); err != nil {
			t.Errorf("%s: lifecycle conditions not all False (the controller's): %v", node, err)
		}
	}
	forgedLifecycleConditions(ctx, t, in, w)
	var reboots []string
	for _, h := range hosts {
		if r := h.Reboots(); len(r) != 1 {
			t.Errorf("%s rebooted %d times, want once", h.Name(), len(r))
		}
		reboots = append(reboots, fmt.Sprintf("%s ×%d", h.Name(), len(h.Reboots())))
	}
	maxOut, unauthorized := w.verdict()
	if maxOut > 1 {
		t.Errorf("%d nodes out at once, --max-concurrent=1", maxOut)
	}
	if len(unauthorized) > 0 {
		t.Errorf("reboots recorded without the authorization of that boot: %v", unauthorized)
	}
	result := "works: every write admitted"
	if t.Failed() {
		result = "FAILED"
	}
	in.Record(Outcome{Attack: "(no attack) a rollout of 3 nodes, --max-concurrent=1, through the four policies",
		Who:    "the real controller (its service-account token) and detectors (tokens bound to their pods)",
		Server: fmt.Sprintf("reboots: %s; at most %d node out; %d reboots without an authorization", strings.Join(reboots, ", "), maxOut, len(unauthorized)),
		Result: result})
}
