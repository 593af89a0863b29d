package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

const zoneKey = "topology.kubernetes.io/zone"

// Nine nodes in three zones ask for a reboot at set times; with
// --max-concurrent 3, --max-concurrent-per-domain 2 and
// --one-domain-at-a-time, a watch on the Nodes (not the controller's
// metrics) sees at every change at most two nodes out per zone, never
// nodes of two zones out together, and each zone started with the oldest
// waiting request (docs/gates.md). Nodes held back get a RebootBlocked
// event naming the budget.
func TestTopologyBudgetOneZoneAtATime(t *testing.T) {
	e := setup(t, 9, 8*time.Minute)
	// Zones a (node-0..2), b (node-3..5), c (node-6..8); minutes ago each
	// asked: zone b holds the oldest request, then a.
	ago := []int{80, 70, 30, 90, 50, 40, 60, 20, 10}
	requested := map[string]time.Time{}
	now := time.Now().Truncate(time.Second)
	for i := range 9 {
		name := nodeName(i)
		requested[name] = now.Add(-time.Duration(ago[i]) * time.Minute)
		e.labelAndRequest(name, map[string]string{zoneKey: string(rune('a' + i/3))}, requested[name])
	}
	w := watchBudgets(t, e.ctx, e.c, budgetRules{global: 3, zoneCap: 2, oneZone: true, requested: requested})
	for i := range 9 {
		e.startHost(nodeName(i), false)
	}
	e.startController("controller-0", "--max-concurrent=3", "--max-concurrent-per-domain=2", "--one-domain-at-a-time")
	for i := range 9 {
		e.waitNode(nodeName(i), rebootDone, "reboot completed")
	}
	t.Logf("taken in order %v", w.takeOrder())
	w.check(t, 9)
	if m := w.maxZone(); m != 2 {
		t.Errorf("at most %d nodes of a zone out, want 2 (the per-zone cap, reached)", m)
	}
	if first := w.takeOrder()[0]; first != "node-3" {
		t.Errorf("first taken %s, want node-3 (the oldest request)", first)
	}
	// Both were held back in the first pass.
	e.waitEventSaying("node-0", contract.ReasonRebootBlocked, `nodes of topology.kubernetes.io/zone="b" are out`)
	e.waitEventSaying("node-5", contract.ReasonRebootBlocked, "(--max-concurrent-per-domain 2)")
}

// Six nodes in two pools with budgets of their own, one node in both; with
// --max-concurrent 3 a watch on the Nodes sees at every change at most one
// GPU node out, at most two spot nodes out (the node in both counting in
// each) and three in all; a node held back gets a RebootBlocked event
// naming its pool.
func TestPoolBudgets(t *testing.T) {
	e := setup(t, 6, 8*time.Minute)
	gpu, spot := map[string]string{"example.com/pool": "gpu"}, map[string]string{"spot": "true"}
	both := map[string]string{"example.com/pool": "gpu-large", "spot": "true"}
	lbls := []map[string]string{gpu, gpu, both, spot, spot, nil}
	ago := []int{90, 50, 70, 80, 60, 40}
	now := time.Now().Truncate(time.Second)
	for i := range 6 {
		e.labelAndRequest(nodeName(i), lbls[i], now.Add(-time.Duration(ago[i])*time.Minute))
	}
	gpuSel, err := labels.Parse("example.com/pool in (gpu,gpu-large)")
	if err != nil {
		t.Fatal(err)
	}
	pools := map[string]poolRule{"gpu": {gpuSel, 1}, "spot": {labels.SelectorFromSet(spot), 2}}
	w := watchBudgets(t, e.ctx, e.c, budgetRules{global: 3, pools: pools})
	for i := range 6 {
		e.startHost(nodeName(i), false)
	}
	e.startController("controller-0", "--max-concurrent=3",
		"--pool-budget=gpu:1:example.com/pool in (gpu,gpu-large)", "--pool-budget=spot:2:spot=true")
	for i := range 6 {
		e.waitNode(nodeName(i), rebootDone, "reboot completed")
	}
	t.Logf("taken in order %v", w.takeOrder())
	w.check(t, 6)
	w.mu.Lock()
	if w.maxPool["gpu"] != 1 || w.maxPool["spot"] != 2 || w.maxTotal != 3 {
		t.Errorf("most out: gpu %d, spot %d, all %d; want 1, 2 and 3 (each budget reached)", w.maxPool["gpu"], w.maxPool["spot"], w.maxTotal)
	}
	w.mu.Unlock()
	// node-2 (in both pools) was held back by the GPU pool in the first
	// pass (and may have been by the spot pool later).
	e.waitEventSaying("node-2", contract.ReasonRebootBlocked, "pool gpu (example.com/pool in (gpu,gpu-large)) has 1 of its 1 nodes out (--pool-budget)")
}

// labelAndRequest labels a node and asks for its reboot with
// nodereboot.io/reboot-requested naming the time of the request (the
// queue's order), in one patch.
func (e *env) labelAndRequest(node string, lbls map[string]string, at time.Time) {
	e.t.Helper()
	meta := map[string]any{"annotations": map[string]string{contract.AnnotationRebootRequested: "e2e " + at.UTC().Format(time.RFC3339)}}
	if len(lbls) > 0 {
		meta["labels"] = lbls
	}
	p := map[string]any{"metadata": meta}
	b, err := json.Marshal(p)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.c.Client.CoreV1().Nodes().Patch(e.ctx, node, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// poolRule is a pool as the watcher sees it.
type poolRule struct {
	sel labels.Selector
	max int
}

// budgetRules are the budgets the watcher holds the cluster to.
type budgetRules struct {
	global  int
	zoneCap int  // 0: none
	oneZone bool // one zone at a time
	pools   map[string]poolRule
	// requested, when set, is each node's request time: a node taken
	// while none is out must be the oldest request not taken yet.
	requested map[string]time.Time
}

// budgetWatcher follows the Nodes with its own informer and checks the
// budgets at every change: a node is out while it carries the state
// annotation, and counts in the zone and pools its own labels name.
type budgetWatcher struct {
	rules budgetRules

	mu        sync.Mutex
	out       map[string]map[string]string // node → its labels
	taken     []string
	maxTotal  int
	maxByZone map[string]int
	maxPool   map[string]int
	// lastBack is the zone of the node that came back last.
	lastBack   string
	violations []string
	log        []string
}

func watchBudgets(t *testing.T, ctx context.Context, c *framework.Cluster, rules budgetRules) *budgetWatcher {
	w := &budgetWatcher{rules: rules, out: map[string]map[string]string{}, maxByZone: map[string]int{}, maxPool: map[string]int{}}
	watchNodes(t, ctx, c, cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.observe(obj) },
		UpdateFunc: func(_, obj any) { w.observe(obj) },
	}, func() string {
		w.mu.Lock()
		defer w.mu.Unlock()
		return "budget watcher timeline:\n" + strings.Join(w.log, "\n")
	})
	return w
}

func (w *budgetWatcher) observe(obj any) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	_, isOut := n.Annotations[contract.AnnotationState]
	w.mu.Lock()
	defer w.mu.Unlock()
	_, wasOut := w.out[n.Name]
	switch {
	case isOut && !wasOut:
		w.checkOrder(n.Name, n.Labels[zoneKey])
		w.taken = append(w.taken, n.Name)
		w.out[n.Name] = maps.Clone(n.Labels)
	case isOut:
		w.out[n.Name] = maps.Clone(n.Labels)
	case wasOut:
		w.lastBack = w.out[n.Name][zoneKey]
		delete(w.out, n.Name)
	default:
		return
	}
	w.count()
	names := slices.Sorted(maps.Keys(w.out))
	w.log = append(w.log, fmt.Sprintf("%s %s out=%v", time.Now().Format("15:04:05.000"), n.Name, names))
}

// checkOrder: a node taken while none is out starts a zone, and must be
// the oldest request not taken yet — or join the zone whose last node just
// came back: the controller may have decided while that node was still out
// (its take lands a moment later), which the rule allows.
func (w *budgetWatcher) checkOrder(node string, zone string) {
	if w.rules.requested == nil || len(w.out) > 0 || (len(w.taken) > 0 && zone == w.lastBack) {
		return
	}
	oldest := ""
	for name, at := range w.rules.requested {
		if slices.Contains(w.taken, name) {
			continue
		}
		if o := w.rules.requested[oldest]; oldest == "" || at.Before(o) || (at.Equal(o) && name < oldest) {
			oldest = name
		}
	}
	if node != oldest {
		w.violate("%s (zone %q) taken with no node out after zone %q, but the oldest waiting request is %s's", node, zone, w.lastBack, oldest)
	}
}

// count checks the budgets on the nodes out now and keeps the maxima.
func (w *budgetWatcher) count() {
	byZone, byPool := map[string]int{}, map[string]int{}
	for _, l := range w.out {
		byZone[l[zoneKey]]++
		for name, p := range w.rules.pools {
			if p.sel.Matches(labels.Set(l)) {
				byPool[name]++
			}
		}
	}
	names := slices.Sorted(maps.Keys(w.out))
	if len(w.out) > w.rules.global {
		w.violate("%d nodes out %v, --max-concurrent %d", len(w.out), names, w.rules.global)
	}
	w.maxTotal = max(w.maxTotal, len(w.out))
	for z, k := range byZone {
		if w.rules.zoneCap > 0 && k > w.rules.zoneCap {
			w.violate("%d nodes of zone %q out %v, cap %d", k, z, names, w.rules.zoneCap)
		}
		w.maxByZone[z] = max(w.maxByZone[z], k)
	}
	if w.rules.oneZone && len(byZone) > 1 {
		w.violate("nodes of zones %v out together: %v", slices.Sorted(maps.Keys(byZone)), names)
	}
	for p, k := range byPool {
		if k > w.rules.pools[p].max {
			w.violate("%d nodes of pool %s out %v, cap %d", k, p, names, w.rules.pools[p].max)
		}
		w.maxPool[p] = max(w.maxPool[p], k)
	}
}

func (w *budgetWatcher) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !slices.Contains(w.violations, msg) {
		w.violations = append(w.violations, msg)
	}
	w.log = append(w.log, "VIOLATION: "+msg)
}

// check reports the violations seen, and that each of the nodes was taken
// exactly once.
func (w *budgetWatcher) check(t *testing.T, nodes int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.violations {
		t.Error(v)
	}
	taken := append([]string(nil), w.taken...)
	sort.Strings(taken)
	if len(taken) != nodes || len(slices.Compact(taken)) != nodes {
		t.Errorf("taken %v, want each of the %d nodes once", w.taken, nodes)
	}
}

func (w *budgetWatcher) maxZone() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := 0
	for _, k := range w.maxByZone {
		m = max(m, k)
	}
	return m
}

func (w *budgetWatcher) takeOrder() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.taken...)
}
