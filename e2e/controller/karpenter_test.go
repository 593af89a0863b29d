package controller_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// nodeHistory records, from an independent watch of the Nodes, what each
// version of each node shows (summary), skipping repeats.
type nodeHistory struct {
	mu      sync.Mutex
	summary func(*corev1.Node) string
	seen    map[string][]string
	changed chan struct{}
}

func watchHistory(t *testing.T, ctx context.Context, c *framework.Cluster, summary func(*corev1.Node) string) *nodeHistory {
	h := &nodeHistory{summary: summary, seen: map[string][]string{}, changed: make(chan struct{})}
	watchNodeVersions(t, ctx, c, func() {}, func(n *corev1.Node) {
		s := h.summary(n)
		h.mu.Lock()
		defer h.mu.Unlock()
		if l := h.seen[n.Name]; len(l) == 0 || l[len(l)-1] != s {
			h.seen[n.Name] = append(l, s)
			close(h.changed)
			h.changed = make(chan struct{})
		}
	})
	return h
}

// waitSeen waits until the watch has seen the summary s on the node and
// returns everything it saw of the node.
func (h *nodeHistory) waitSeen(ctx context.Context, t *testing.T, node, s string) []string {
	t.Helper()
	for {
		h.mu.Lock()
		seen, ch := slices.Clone(h.seen[node]), h.changed
		h.mu.Unlock()
		if slices.Contains(seen, s) {
			return seen
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("the watch never saw %q on %s; it saw %q", s, node, seen)
		}
	}
}

// Two nodes need a reboot: node-0 carries no karpenter.sh/do-not-disrupt,
// node-1 one an administrator set. An independent watch sees node-0
// protected (with the controller's record) exactly while it is in the
// pipeline and the protection gone after it; node-1's annotation stays as it
// was, and the controller never marks it as its own.
func TestKarpenterProtection(t *testing.T) {
	e := setup(t, 2, 4*time.Minute)
	patch := []byte(`{"metadata":{"annotations":{"` + contract.AnnotationDoNotDisrupt + `":"true"}}}`)
	if _, err := e.c.Client.CoreV1().Nodes().Patch(e.ctx, "node-1", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	h := watchHistory(t, e.ctx, e.c, func(n *corev1.Node) string {
		_, out := n.Annotations[contract.AnnotationState]
		dnd, has := n.Annotations[contract.AnnotationDoNotDisrupt]
		if !has {
			dnd = "-"
		}
		_, ours := n.Annotations[contract.AnnotationDoNotDisruptByUs]
		return map[bool]string{true: "out", false: "idle"}[out] + " do-not-disrupt=" + dnd + map[bool]string{true: " (ours)", false: ""}[ours] +
			map[bool]string{true: " rebooted", false: ""}[n.Annotations[contract.AnnotationLastReboot] != ""]
	})
	for i := range 2 {
		e.startHost(nodeName(i), true)
	}
	e.startController("controller-0", "--karpenter-protection=true")
	for i := range 2 {
		if err := e.sims[nodeName(i)].CreateSentinel(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		e.waitNode(nodeName(i), rebootDone, "reboot completed")
	}
	seen0 := h.waitSeen(e.ctx, t, "node-0", "idle do-not-disrupt=- rebooted")
	if !slices.Contains(seen0, "out do-not-disrupt=true (ours)") {
		t.Errorf("node-0 was never protected while out: %q", seen0)
	}
	for _, s := range seen0 {
		if (s == "out do-not-disrupt=-") || (s != "idle do-not-disrupt=-" && s != "idle do-not-disrupt=- rebooted" && s != "out do-not-disrupt=true (ours)") {
			t.Errorf("node-0 showed %q (all: %q)", s, seen0)
		}
	}
	seen1 := h.waitSeen(e.ctx, t, "node-1", "idle do-not-disrupt=true rebooted")
	for _, s := range seen1 {
		if s != "idle do-not-disrupt=true" && s != "out do-not-disrupt=true" && s != "idle do-not-disrupt=true rebooted" {
			t.Errorf("node-1 (an administrator's do-not-disrupt) showed %q (all: %q)", s, seen1)
		}
	}
}

// watchNodeVersions runs an informer on the Nodes that calls observe with
// every version it receives (added or updated) until the test ends;
// relisted is called when it lists again (the versions in between are
// lost).
func watchNodeVersions(t *testing.T, ctx context.Context, c *framework.Cluster, relisted func(), observe func(*corev1.Node)) {
	t.Helper()
	inf := cache.NewSharedIndexInformer(framework.RelistingNodeListWatch(c.Client, relisted), &corev1.Node{}, 0, cache.Indexers{})
	on := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			observe(n)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: on, UpdateFunc: func(_, obj any) { on(obj) }})
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); inf.RunWithContext(wctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("node watch not synced")
	}
}
