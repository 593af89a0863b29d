package drain

import (
	"sort"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"
)

// BudgetHandler returns event handlers for a PodDisruptionBudget informer
// (the one whose lister New got) that retry refused evictions when their
// budget can allow them: a status change of a budget that blocked a pod on
// a node being drained, to DisruptionsAllowed > 0, makes that pod due again
// (at most one attempt per change of the budget's status, and never sooner
// than MinRetrySpacing after the pod's last attempt), and requeue is called
// with the node's name. Budgets that block no pod of a draining node cost a
// map lookup per draining node and nothing else. The deletion of a budget
// that blocked a pod makes the pod due too. requeue is also called for a
// node whose pod waited for its budget's eviction turn when that turn frees
// (turns.go), which a status update recording an eviction on the wire may
// do.
func (d *Drainer) BudgetHandler(requeue func(node string)) cache.ResourceEventHandler {
	d.turns.setWake(requeue)
	wake := func(pdb *policyv1.PodDisruptionBudget) {
		for _, node := range d.budgetChanged(pdb) {
			requeue(node)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*policyv1.PodDisruptionBudget)
			n, ok2 := newObj.(*policyv1.PodDisruptionBudget)
			if !ok1 || !ok2 {
				return
			}
			d.turns.recorded(n)
			if n.Status.DisruptionsAllowed <= 0 || equality.Semantic.DeepEqual(o.Status, n.Status) {
				return
			}
			wake(n)
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pdb, ok := obj.(*policyv1.PodDisruptionBudget); ok {
				gone := pdb.DeepCopy()
				gone.ResourceVersion = "deleted"
				wake(gone)
			}
		},
	}
}

// budgetChanged makes the pods waiting on pdb at an older version due and
// returns their nodes.
func (d *Drainer) budgetChanged(pdb *policyv1.PodDisruptionBudget) []string {
	key := pdb.Namespace + "/" + pdb.Name
	now := d.clock.Now()
	d.mu.Lock()
	states := make(map[string]*nodeState, len(d.nodes))
	for node, st := range d.nodes {
		states[node] = st
	}
	d.mu.Unlock()
	var nodes []string
	for node, st := range states {
		if st.wake(key, pdb.ResourceVersion, now, d.opts.MinRetrySpacing) {
			nodes = append(nodes, node)
		}
	}
	sort.Strings(nodes)
	return nodes
}

// wake makes the node's pods that wait on budget key at a version other
// than rv due, once for that version; it reports whether any was.
func (st *nodeState) wake(key, rv string, now time.Time, spacing time.Duration) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	woke := false
	for uid, waits := range st.waits {
		seen, ok := waits[key]
		if !ok || seen == rv {
			continue
		}
		waits[key] = rv // one attempt per change of the budget
		due := now
		if t, ok := st.tried[uid]; ok && t.Add(spacing).After(due) {
			due = t.Add(spacing)
		}
		if at, ok := st.retryAt[uid]; !ok || due.Before(at) {
			st.retryAt[uid] = due
			woke = true
		}
	}
	return woke
}
