package controller_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// lifecycleWatch records, from an independent watch of the Nodes, every
// change of a lifecycle condition (KEP-5683) per node, and every write of
// one that changed neither its status nor its reason (the controller sets
// lastHeartbeatTime on each write: a new heartbeat alone is a useless
// write).
type lifecycleWatch struct {
	mu      sync.Mutex
	prev    map[string]map[string]corev1.NodeCondition
	seq     map[string][]string // node → "Type=Status" in order
	useless []string
	gaps    int
	changed chan struct{} // closed (and replaced) at every change of seq
}

func watchLifecycle(t *testing.T, ctx context.Context, c *framework.Cluster) *lifecycleWatch {
	w := &lifecycleWatch{prev: map[string]map[string]corev1.NodeCondition{}, seq: map[string][]string{}, changed: make(chan struct{})}
	watchNodeVersions(t, ctx, c, func() { w.mu.Lock(); w.gaps++; w.mu.Unlock() }, w.observe)
	return w
}

func (w *lifecycleWatch) observe(n *corev1.Node) {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev := w.prev[n.Name]
	if prev == nil {
		prev = map[string]corev1.NodeCondition{}
		w.prev[n.Name] = prev
	}
	var step []string
	for _, t := range contract.LifecycleConditions {
		c := contract.Condition(n, t)
		if c == nil {
			continue
		}
		p, seen := prev[t]
		switch {
		case !seen || p.Status != c.Status:
			step = append(step, t+"="+string(c.Status))
		case p.Reason == c.Reason && !p.LastHeartbeatTime.Equal(&c.LastHeartbeatTime):
			w.useless = append(w.useless, fmt.Sprintf("%s %s=%s/%s", n.Name, t, c.Status, c.Reason))
		}
		prev[t] = *c
	}
	if len(step) > 0 {
		w.seq[n.Name] = append(w.seq[n.Name], strings.Join(step, "+"))
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// waitLast waits until the watch has seen step as the node's last change.
func (w *lifecycleWatch) waitLast(ctx context.Context, t *testing.T, node, step string) {
	t.Helper()
	for {
		w.mu.Lock()
		seq, ch := w.seq[node], w.changed
		w.mu.Unlock()
		if len(seq) > 0 && seq[len(seq)-1] == step {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("the watch never saw %s on %s; it saw %v", step, node, seq)
		}
	}
}

func (w *lifecycleWatch) sequence(node string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seq[node]...)
}

// lifecycleAllFalse: every lifecycle condition of the controller False.
func lifecycleAllFalse(n *corev1.Node) bool {
	for _, t := range contract.LifecycleConditions {
		c := contract.Condition(n, t)
		if c == nil || c.Status != corev1.ConditionFalse || !contract.LifecycleOurs(c.Message) {
			return false
		}
	}
	return true
}

// Two nodes need a reboot, one slot: an independent watch sees each node's
// lifecycle conditions go MaintenancePlanned → DrainInProgress → Drained
// (DrainInProgress False) with MaintenanceInProgress → all False, the node
// that waits for the slot showing MaintenancePlanned alone first; no write
// that changes nothing; an idle node gets none.
func TestLifecycleConditionsSequence(t *testing.T) {
	e := setup(t, 3, 5*time.Minute)
	lw := watchLifecycle(t, e.ctx, e.c)
	for i := range 3 {
		e.startHost(nodeName(i), true)
	}
	e.startController("controller-0")
	for i := range 2 {
		if err := e.sims[nodeName(i)].CreateSentinel(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		e.waitNode(nodeName(i), func(n *corev1.Node) bool { return rebootDone(n) && lifecycleAllFalse(n) },
			"reboot completed and its lifecycle conditions all False")
	}
	const (
		authorized = "DrainInProgress=False+Drained=True+MaintenanceInProgress=True"
		done       = "MaintenancePlanned=False+Drained=False+MaintenanceInProgress=False"
	)
	taken := strings.Join([]string{"MaintenancePlanned=True+DrainInProgress=True", authorized, done}, " → ")
	waiting := strings.Join([]string{"MaintenancePlanned=True", "DrainInProgress=True", authorized, done}, " → ")
	waited := 0
	for i := range 2 {
		lw.waitLast(e.ctx, t, nodeName(i), done)
		switch got := strings.Join(lw.sequence(nodeName(i)), " → "); got {
		case waiting:
			waited++
		case taken:
		default:
			t.Errorf("%s: lifecycle conditions went\n  %s\nwant\n  %s\nor, if it waited for the slot,\n  %s", nodeName(i), got, taken, waiting)
		}
	}
	if waited == 0 {
		t.Errorf("neither node showed MaintenancePlanned alone while the other held the slot")
	}
	if seq := lw.sequence("node-2"); len(seq) > 0 {
		t.Errorf("node-2 needed no reboot but its lifecycle conditions went %v", seq)
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if len(lw.useless) > 0 {
		t.Errorf("writes that changed neither status nor reason: %v", lw.useless)
	}
	if lw.gaps > 0 {
		t.Logf("the watch relisted %d times: a sequence may lack steps", lw.gaps)
	}
}
