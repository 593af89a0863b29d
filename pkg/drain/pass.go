package drain

import (
	"context"
	"fmt"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// Skip says why a pod does not have to leave the node for a reboot ("" if it
// has to): it is terminal, a mirror pod, or owned by a DaemonSet.
func Skip(p *v1.Pod) string {
	switch {
	case contract.PodTerminal(p):
		return "terminal"
	case p.Annotations[v1.MirrorPodAnnotationKey] != "":
		return "mirror pod"
	}
	if contract.DaemonSetPod(p) {
		return "DaemonSet"
	}
	return ""
}

func hasEmptyDir(p *v1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			return true
		}
	}
	return false
}

type pending struct {
	name    string
	why     string
	blocked bool
}

// Pass runs one drain pass over the pods of node: it evicts every pod that
// must go and is due (not refused less than RetryDelay ago), and reports
// what is left. It never waits and never deletes a pod. d's state for node
// makes repeated passes idempotent: a pod already evicted (terminating) is
// not evicted again. Once ctx ends no eviction starts, but one already sent
// runs to its end (at most EvictionRequestTimeout): cut in the middle, it
// would leave its budget blocked for two minutes.
func (d *Drainer) Pass(ctx context.Context, node string, pods []*v1.Pod) decide.DrainStatus {
	st := d.state(node)
	now := d.clock.Now()
	var out decide.DrainStatus
	var left []pending
	sorted := append([]*v1.Pod(nil), pods...)
	sort.Slice(sorted, func(i, j int) bool {
		return sorted[i].Namespace+"/"+sorted[i].Name < sorted[j].Namespace+"/"+sorted[j].Name
	})
	for _, p := range sorted {
		if p.Spec.NodeName != node || Skip(p) != "" {
			continue
		}
		l, retryAt, stays := d.passPod(ctx, node, st, p, now, &out)
		if !retryAt.IsZero() && (out.RetryAt.IsZero() || retryAt.Before(out.RetryAt)) {
			out.RetryAt = retryAt
		}
		if stays {
			left = append(left, l)
		}
	}
	out.Pending = len(left)
	out.Pods = d.listPending(left)
	return out
}

// passPod is one pod's part of a pass: what keeps it on the node (stays
// false once it is gone) and, when it waits, when it is due again.
func (d *Drainer) passPod(ctx context.Context, node string, st *nodeState, p *v1.Pod, now time.Time, out *decide.DrainStatus) (l pending, retryAt time.Time, stays bool) {
	l = pending{name: p.Namespace + "/" + p.Name}
	switch {
	case p.DeletionTimestamp != nil:
		l.why = "terminating"
		return l, time.Time{}, true
	case hasEmptyDir(p) && !d.opts.DeleteEmptyDirData:
		l.why, l.blocked = "has emptyDir data and --delete-emptydir-data=false", true
		return l, time.Time{}, true
	case st.evicted[p.UID]:
		// Evicted by an earlier pass; the watch has not seen the deletion
		// yet.
		l.why = "evicted"
		return l, time.Time{}, true
	}
	st.mu.Lock()
	at, waiting := st.retryAt[p.UID]
	st.mu.Unlock()
	if waiting && at.After(now) {
		l.why, l.blocked = st.why[p.UID], true
		return l, at, true
	}
	if ctx.Err() != nil {
		// Stopping: start no new eviction.
		l.why = "not evicted: the controller is stopping"
		return l, time.Time{}, true
	}
	// The budgets' versions before the request (a status change after
	// them may come while it is on the wire); their names are the turns
	// to take: one eviction at a time per budget (turns.go), a node whose
	// turn is taken requeued when it frees, when it lapses, or after
	// RetryDelay.
	before, listed := d.budgetVersions(p)
	release, lapses, ok := d.turns.tryTake(&turn{node: node, pod: p.Name, since: d.clock.Now(), versions: before, listed: listed})
	if !ok {
		l.why = "waiting for its turn: one eviction at a time per PodDisruptionBudget"
		if d.opts.RetryDelay > 0 {
			retryAt = now.Add(d.opts.RetryDelay)
		}
		if !lapses.IsZero() && (retryAt.IsZero() || lapses.Before(retryAt)) {
			retryAt = lapses
		}
		return l, retryAt, true
	}
	return d.evictPod(ctx, node, st, p, now, before, release, out)
}

// evictPod evicts a pod that is due, gives its budgets' turn back
// (release) and records the result; before are its budgets' versions read
// before the request. An accepted eviction counts in out.Evicted.
func (d *Drainer) evictPod(ctx context.Context, node string, st *nodeState, p *v1.Pod, now time.Time, before map[string]string, release func(), out *decide.DrainStatus) (l pending, retryAt time.Time, stays bool) {
	l = pending{name: p.Namespace + "/" + p.Name}
	st.mu.Lock()
	st.tried[p.UID] = now
	st.mu.Unlock()
	result, why := d.evict(ctx, node, p, st)
	release()
	if d.opts.OnEviction != nil {
		d.opts.OnEviction(result)
	}
	switch result {
	case ResultGone:
		st.settle(p.UID)
		return l, time.Time{}, false
	case ResultEvicted:
		out.Evicted++
		st.settle(p.UID)
		st.evicted[p.UID] = true
		klog.FromContext(ctx).V(2).Info("Evicted pod", "node", node, "pod", klog.KObj(p))
		l.why = "evicted"
		return l, time.Time{}, true
	default:
		at := d.refused(st, p, result, before, now)
		st.why[p.UID] = why
		l.why, l.blocked = why, true
		return l, at, true
	}
}

// listPending describes up to MaxListed pending pods, blocked ones first.
func (d *Drainer) listPending(left []pending) []string {
	sort.SliceStable(left, func(i, j int) bool { return left[i].blocked && !left[j].blocked })
	var pods []string
	for i, l := range left {
		if i == d.opts.MaxListed {
			pods = append(pods, fmt.Sprintf("and %d more", len(left)-i))
			break
		}
		pods = append(pods, l.name+" ("+l.why+")")
	}
	return pods
}
