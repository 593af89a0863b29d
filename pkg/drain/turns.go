package drain

import (
	"sort"
	"sync"
)

// budgetTurns gives the eviction requests of pods under the same
// PodDisruptionBudget one turn at a time, across every node being drained,
// without making any worker wait: a node whose pod finds the turn taken
// waits as a drain waits on a budget, and is requeued when the turn frees.
//
// Why: the API server grants an eviction by updating the budget's status
// (disruptionsAllowed, disruptedPods) with a resourceVersion precondition,
// and when two evictions under one budget race for that update the loser
// sleeps EvictionsRetry's 500 ms before it tries again (kube-apiserver,
// pkg/registry/core/pod/storage/eviction.go). Ten nodes drained at once under
// one budget made evictions take up to 1.7 s in the API server; one request
// at a time per budget takes tens of milliseconds each. Pods that no budget
// covers need no turn: their eviction writes no budget.
type budgetTurns struct {
	mu      sync.Mutex
	held    map[string]bool            // budget (namespace/name) → a request under it is on the wire
	waiters map[string]map[string]bool // budget → nodes to requeue when its turn frees
	// wake requeues a node (set by Drainer.BudgetHandler; nil: nobody is
	// woken, and the drain's RetryDelay bounds the wait).
	wake func(node string)
}

// tryTake takes the turn of every budget in keys for node, or none of them:
// if one is held, node is remembered as waiting for it and ok is false.
// release gives the turns back and wakes the nodes that waited for them.
func (t *budgetTurns) tryTake(keys []string, node string) (release func(), ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if t.held[k] {
			if t.waiters == nil {
				t.waiters = map[string]map[string]bool{}
			}
			if t.waiters[k] == nil {
				t.waiters[k] = map[string]bool{}
			}
			t.waiters[k][node] = true
			return nil, false
		}
	}
	if t.held == nil {
		t.held = map[string]bool{}
	}
	for _, k := range keys {
		t.held[k] = true
	}
	return func() { t.release(keys) }, true
}

// release frees the turns of keys and wakes, once each, the nodes that
// waited for any of them.
func (t *budgetTurns) release(keys []string) {
	t.mu.Lock()
	woken := map[string]bool{}
	for _, k := range keys {
		delete(t.held, k)
		for node := range t.waiters[k] {
			woken[node] = true
		}
		delete(t.waiters, k)
	}
	wake := t.wake
	t.mu.Unlock()
	if wake == nil {
		return
	}
	nodes := make([]string, 0, len(woken))
	for node := range woken {
		nodes = append(nodes, node)
	}
	sort.Strings(nodes)
	for _, node := range nodes {
		wake(node)
	}
}

// setWake sets the function that requeues a node whose turn freed.
func (t *budgetTurns) setWake(wake func(node string)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.wake = wake
}

// forget drops node from every budget's waiters (its drain ended).
func (t *budgetTurns) forget(node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, nodes := range t.waiters {
		delete(nodes, node)
		if len(nodes) == 0 {
			delete(t.waiters, k)
		}
	}
}
