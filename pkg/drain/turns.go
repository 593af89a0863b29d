package drain

import (
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	policyv1 "k8s.io/api/policy/v1"
)

// TurnLease is how long an eviction request holds its budgets' turns alone
// once somebody else changed the budget's status while it was on the wire:
// a request still on the wire after it has most likely lost the race with
// that change and sleeps in the API server's 500 ms EvictionsRetry (during
// which it does not touch the budget), and one more request under the
// budget may go. Answered evictions take tens of milliseconds (rarely more
// than 300 ms in the benchmark's audit logs on a loaded machine); a lost
// race, 450 ms at least (the 500 ms sleep less its 10 % jitter). A request
// that is only slow and loses its turn this way costs one race at worst.
const TurnLease = 300 * time.Millisecond

// maxPerBudget is how many eviction requests under one budget may be on the
// wire at once: one, and a second once the first outlasted TurnLease. More
// would only pile onto an API server that answers slowly.
const maxPerBudget = 2

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
//
// A turn frees when its request is answered, or earlier when it no longer
// protects anything: once the budget's status records the evicted pod (the
// API server made its update and only deletes the pod now; see recorded),
// or once the request outlasted TurnLease after a change of the budget by
// somebody else (it sleeps after losing the race with that change, typically
// the disruption controller's own status update, and would otherwise hold
// every other node's eviction for 500 ms).
type budgetTurns struct {
	mu sync.Mutex
	// held: budget (namespace/name) → the requests under it on the wire
	// that hold its turn (at most maxPerBudget).
	held    map[string][]*turn
	waiters map[string]map[string]bool // budget → nodes to requeue when its turn frees
	// wake requeues a node (set by Drainer.BudgetHandler; nil: nobody is
	// woken, and the drain's RetryDelay bounds the wait).
	wake func(node string)
}

// turn is one eviction request's hold on the turns of its pod's budgets.
type turn struct {
	node  string
	pod   string    // the pod's name: its key in a budget's status.disruptedPods
	since time.Time // when the turn was taken (the request sent)
	// versions are the budgets' resourceVersions read before the request;
	// listed, those whose status already named the pod then (a former pod
	// of the same name): their record cannot be told from this request's.
	versions map[string]string
	listed   map[string]bool
	// raced are the budgets whose status changed, not recording the pod,
	// while the request was on the wire (guarded by budgetTurns.mu).
	raced map[string]bool
}

// tryTake takes the turn of every budget in tn.versions, or none of them:
// if one is held, tn's node is remembered as waiting for it, ok is false,
// and at is when that turn lapses (zero: only its release frees it).
// release gives the turns back and wakes the nodes that waited for them.
func (t *budgetTurns) tryTake(tn *turn) (release func(), at time.Time, ok bool) {
	keys := slices.Sorted(maps.Keys(tn.versions))
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if free, lapses := turnFree(t.held[k], k, tn.since); !free {
			if t.waiters == nil {
				t.waiters = map[string]map[string]bool{}
			}
			if t.waiters[k] == nil {
				t.waiters[k] = map[string]bool{}
			}
			t.waiters[k][tn.node] = true
			return nil, lapses, false
		}
	}
	if t.held == nil {
		t.held = map[string][]*turn{}
	}
	for _, k := range keys {
		t.held[k] = append(t.held[k], tn)
		delete(t.waiters[k], tn.node) // no longer waits for it
	}
	return func() { t.release(tn, keys) }, time.Time{}, true
}

// turnFree reports whether budget k, whose turn the requests hs hold, can
// take one more at now, and else when it can (zero: at a release, or at the
// next change of the budget).
func turnFree(hs []*turn, k string, now time.Time) (bool, time.Time) {
	switch {
	case len(hs) == 0:
		return true, time.Time{}
	case len(hs) >= maxPerBudget, !hs[len(hs)-1].raced[k]:
		return false, time.Time{}
	}
	lapses := hs[len(hs)-1].since.Add(TurnLease)
	if !now.Before(lapses) {
		return true, time.Time{}
	}
	return false, lapses
}

// release frees tn's turns of keys (those it still holds) and wakes, once
// each, the nodes that waited for any of them.
func (t *budgetTurns) release(tn *turn, keys []string) {
	t.mu.Lock()
	woken := map[string]bool{}
	for _, k := range keys {
		t.drop(k, tn, woken)
	}
	wake := t.wake
	t.mu.Unlock()
	wakeSorted(wake, woken)
}

// recorded looks at a new version of pdb for the requests that hold its
// turn. One whose eviction the status records (the pod named in
// status.disruptedPods at a version other than the one read before the
// request) gives the turn back: the API server has made the request's
// update of the budget and only deletes the pod, so the next eviction under
// the budget reads the budget after it and cannot race it. For the others
// the budget changed under them: they may lose the race (see TurnLease),
// and a waiting node is woken to look again when the lease ends.
func (t *budgetTurns) recorded(pdb *policyv1.PodDisruptionBudget) {
	key := pdb.Namespace + "/" + pdb.Name
	t.mu.Lock()
	woken := map[string]bool{}
	for _, tn := range slices.Clone(t.held[key]) {
		if tn.versions[key] == pdb.ResourceVersion {
			continue
		}
		if _, listed := pdb.Status.DisruptedPods[tn.pod]; listed && !tn.listed[key] {
			t.drop(key, tn, woken)
			continue
		}
		if !tn.raced[key] {
			if tn.raced == nil {
				tn.raced = map[string]bool{}
			}
			tn.raced[key] = true
			for node := range t.waiters[key] {
				woken[node] = true // to learn when the turn lapses
			}
		}
	}
	wake := t.wake
	t.mu.Unlock()
	wakeSorted(wake, woken)
}

// drop removes tn from the holders of k's turn, if it is one, and adds k's
// waiters to woken; t.mu is held.
func (t *budgetTurns) drop(k string, tn *turn, woken map[string]bool) {
	hs := t.held[k]
	i := slices.Index(hs, tn)
	if i < 0 {
		return
	}
	if hs = slices.Delete(hs, i, i+1); len(hs) == 0 {
		delete(t.held, k)
	} else {
		t.held[k] = hs
	}
	for node := range t.waiters[k] {
		woken[node] = true
	}
	delete(t.waiters, k)
}

func wakeSorted(wake func(string), woken map[string]bool) {
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
