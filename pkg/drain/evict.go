package drain

import (
	"context"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// evict sends one eviction and returns its result and, unless the pod is
// evicted or gone, why it is still there.
func (d *Drainer) evict(ctx context.Context, node string, p *v1.Pod, st *nodeState) (string, string) {
	ev := &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(p.UID)}},
	}
	if d.opts.GracePeriodSeconds >= 0 {
		ev.DeleteOptions.GracePeriodSeconds = ptr.To(d.opts.GracePeriodSeconds)
	}
	// An eviction request, once sent, is seen through even if ctx ends (the
	// controller stopping, its leadership lost): the API server records the
	// pod in the budget's disruptedPods before it deletes the pod, and a
	// request cut in between leaves a running pod counted as disrupted,
	// which blocks every eviction under that budget for the disruption
	// controller's 2-minute DeletionTimeout. The request is bounded by
	// EvictionRequestTimeout; the API server enforces the budget whoever is
	// leading.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), EvictionRequestTimeout)
	defer cancel()
	err := d.client.CoreV1().Pods(p.Namespace).EvictV1(rctx, ev)
	name := p.Namespace + "/" + p.Name
	switch {
	case err == nil:
		return ResultEvicted, ""
	case apierrors.IsNotFound(err):
		return ResultGone, ""
	case apierrors.IsTooManyRequests(err):
		budgets := d.budgets(p)
		why := "eviction refused: " + err.Error()
		if len(budgets) > 0 {
			why = "blocked by PodDisruptionBudget " + strings.Join(budgets, ", ")
		}
		if hint := unhealthyPodHint(p, d.matching(p)); hint != "" {
			why += "; " + hint
		}
		if st.warned[p.UID] != why {
			st.warned[p.UID] = why
			d.recorder.Eventf(contract.NodeRef(node), v1.EventTypeWarning, contract.ReasonEvictionBlocked,
				"Eviction of pod %s %s (%v); retrying when the budget allows a disruption, at the latest every %s", name, why, err, d.opts.RetryDelay)
		}
		klog.FromContext(ctx).V(2).Info("Eviction refused", "node", node, "pod", klog.KObj(p), "budgets", budgets, "err", err)
		return ResultBlocked, why
	default:
		klog.FromContext(ctx).Info("Eviction failed", "node", node, "pod", klog.KObj(p), "err", err)
		return ResultError, "eviction error: " + err.Error()
	}
}

// settle forgets a pod's retry: it is evicted or gone.
func (st *nodeState) settle(uid types.UID) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.retryAt, uid)
	delete(st.waits, uid)
}

// budgets names the disruption budgets whose selector matches the pod.
func (d *Drainer) budgets(p *v1.Pod) []string {
	var names []string
	for _, pdb := range d.matching(p) {
		names = append(names, pdb.Namespace+"/"+pdb.Name)
	}
	sort.Strings(names)
	return names
}

// budgetVersions maps the budgets matching the pod to their cached
// resourceVersion; listed names those whose cached status already lists a
// pod of its name as disrupted.
func (d *Drainer) budgetVersions(p *v1.Pod) (versions map[string]string, listed map[string]bool) {
	versions, listed = map[string]string{}, map[string]bool{}
	for _, pdb := range d.matching(p) {
		key := pdb.Namespace + "/" + pdb.Name
		versions[key] = pdb.ResourceVersion
		if _, ok := pdb.Status.DisruptedPods[p.Name]; ok {
			listed[key] = true
		}
	}
	return versions, listed
}

// refused records a refused or failed eviction and returns when the pod is
// due again: after RetryDelay, unless a budget that matches it changes its
// status to allow a disruption first (BudgetHandler wakes it then). An
// error counts too: the API server's eviction retries its budget update for
// up to 10 s on conflicts, which a budget that keeps changing can exhaust
// (the request then times out); the next change of that budget is the
// moment to try again. A
// status change that came while the request was on the wire (the cache
// holds another version than before) wakes it at once, after the minimum
// spacing. Recording the budgets' versions and the retry time under st.mu
// leaves no gap for an event to fall through: BudgetHandler sees either
// the versions read here or came before the read, which then saw its
// version.
func (d *Drainer) refused(st *nodeState, p *v1.Pod, result string, before map[string]string, now time.Time) time.Time {
	at := now.Add(d.opts.RetryDelay)
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.waits, p.UID)
	if result == ResultBlocked || result == ResultError {
		waits := map[string]string{}
		for _, pdb := range d.matching(p) {
			key := pdb.Namespace + "/" + pdb.Name
			waits[key] = pdb.ResourceVersion
			if pdb.ResourceVersion != before[key] && pdb.Status.DisruptionsAllowed > 0 {
				at = minTime(at, now.Add(d.opts.MinRetrySpacing))
			}
		}
		if len(waits) > 0 {
			st.waits[p.UID] = waits
		}
	}
	st.retryAt[p.UID] = at
	return at
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (d *Drainer) matching(p *v1.Pod) []*policyv1.PodDisruptionBudget {
	if d.pdbs == nil {
		return nil
	}
	list, err := d.pdbs.PodDisruptionBudgets(p.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*policyv1.PodDisruptionBudget
	for _, pdb := range list {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(p.Labels)) {
			out = append(out, pdb)
		}
	}
	return out
}
