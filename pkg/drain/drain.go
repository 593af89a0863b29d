package drain

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// Eviction results, the label values of the controller's
// nodereboot_evictions_total.
const (
	ResultEvicted = "evicted" // the eviction was accepted
	ResultBlocked = "blocked" // 429: a disruption budget refused it
	ResultGone    = "gone"    // 404: the pod was already gone
	ResultError   = "error"   // any other error
)

// DefaultMinRetrySpacing is Options.MinRetrySpacing's default.
const DefaultMinRetrySpacing = 100 * time.Millisecond

// EvictionRequestTimeout bounds one eviction request, which runs to its end
// even when the drain's context ends (see Drainer.Pass).
const EvictionRequestTimeout = 10 * time.Second

// Options configure a Drainer.
type Options struct {
	// GracePeriodSeconds overrides each pod's termination grace period
	// when >= 0.
	GracePeriodSeconds int64
	// DeleteEmptyDirData allows evicting pods with emptyDir volumes (their
	// data is lost).
	DeleteEmptyDirData bool
	// RetryDelay is how long to wait before evicting a pod again after an
	// error, and at most after a refusal by a disruption budget: a refused
	// pod is tried again as soon as a budget that blocked it changes its
	// status to allow a disruption (see BudgetHandler), else after
	// RetryDelay (the fallback when no budget event comes).
	RetryDelay time.Duration
	// MinRetrySpacing is the least time between two eviction requests for
	// one pod, however often its budget changes (default
	// DefaultMinRetrySpacing, never more than RetryDelay).
	MinRetrySpacing time.Duration
	// MaxListed caps the pods named in decide.DrainStatus.Pods (default 10).
	MaxListed int
	// OnEviction, if set, is called with the result of every eviction
	// request (for metrics).
	OnEviction func(result string)
}

// Drainer evicts pods. It remembers, per node, which pods were refused and
// when they may be tried again; Forget drops that when the drain ends. It is
// safe for concurrent use on different nodes.
type Drainer struct {
	client   kubernetes.Interface
	pdbs     policylisters.PodDisruptionBudgetLister
	recorder record.EventRecorder
	clock    clock.PassiveClock
	opts     Options

	mu    sync.Mutex
	nodes map[string]*nodeState
	turns budgetTurns
}

type nodeState struct {
	// mu guards retryAt, waits and tried, which BudgetHandler's events
	// change while a pass runs.
	mu      sync.Mutex
	retryAt map[types.UID]time.Time
	// waits are, per refused pod, the budgets that matched it and, for
	// each, the resourceVersion of the budget last acted on: a status
	// change of a later version wakes the pod once.
	waits map[types.UID]map[string]string
	// tried is when each pod's last eviction was sent.
	tried   map[types.UID]time.Time
	why     map[types.UID]string
	warned  map[types.UID]string // the blocker last announced by an event
	evicted map[types.UID]bool   // accepted evictions: never sent twice
}

// New returns a Drainer. pdbs may be nil (refusals then name no budget).
func New(client kubernetes.Interface, pdbs policylisters.PodDisruptionBudgetLister, recorder record.EventRecorder, clk clock.PassiveClock, opts Options) *Drainer {
	if opts.MaxListed <= 0 {
		opts.MaxListed = 10
	}
	if opts.MinRetrySpacing <= 0 {
		opts.MinRetrySpacing = DefaultMinRetrySpacing
	}
	if opts.RetryDelay > 0 && opts.MinRetrySpacing > opts.RetryDelay {
		opts.MinRetrySpacing = opts.RetryDelay
	}
	return &Drainer{client: client, pdbs: pdbs, recorder: recorder, clock: clk, opts: opts, nodes: map[string]*nodeState{}}
}

// Forget drops what the Drainer remembers about a node's drain.
func (d *Drainer) Forget(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.nodes, node)
	d.turns.forget(node)
}

func (d *Drainer) state(node string) *nodeState {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.nodes[node]
	if s == nil {
		s = &nodeState{retryAt: map[types.UID]time.Time{}, waits: map[types.UID]map[string]string{}, tried: map[types.UID]time.Time{}, why: map[types.UID]string{}, warned: map[types.UID]string{}, evicted: map[types.UID]bool{}}
		d.nodes[node] = s
	}
	return s
}

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
	logger := klog.FromContext(ctx).WithValues("node", node)
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
		name := p.Namespace + "/" + p.Name
		if p.DeletionTimestamp != nil {
			left = append(left, pending{name: name, why: "terminating"})
			continue
		}
		if hasEmptyDir(p) && !d.opts.DeleteEmptyDirData {
			left = append(left, pending{name: name, why: "has emptyDir data and --delete-emptydir-data=false", blocked: true})
			continue
		}
		if st.evicted[p.UID] {
			// Evicted by an earlier pass; the watch has not seen the
			// deletion yet.
			left = append(left, pending{name: name, why: "evicted"})
			continue
		}
		st.mu.Lock()
		at, waiting := st.retryAt[p.UID]
		st.mu.Unlock()
		if waiting && at.After(now) {
			left = append(left, pending{name: name, why: st.why[p.UID], blocked: true})
			if out.RetryAt.IsZero() || at.Before(out.RetryAt) {
				out.RetryAt = at
			}
			continue
		}
		if ctx.Err() != nil {
			// Stopping: start no new eviction.
			left = append(left, pending{name: name, why: "not evicted: the controller is stopping"})
			continue
		}
		// One eviction at a time per budget (turns.go); a node whose
		// turn is taken is requeued when it frees, or after RetryDelay.
		release, ok := d.turns.tryTake(d.budgets(p), node)
		if !ok {
			left = append(left, pending{name: name, why: "waiting for its turn: one eviction at a time per PodDisruptionBudget"})
			if at := now.Add(d.opts.RetryDelay); d.opts.RetryDelay > 0 && (out.RetryAt.IsZero() || at.Before(out.RetryAt)) {
				out.RetryAt = at
			}
			continue
		}
		// The budgets' versions before the request: a status change
		// after them may have come while it was on the wire.
		before := d.budgetVersions(p)
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
			continue
		case ResultEvicted:
			out.Evicted++
			st.settle(p.UID)
			st.evicted[p.UID] = true
			left = append(left, pending{name: name, why: "evicted"})
			logger.V(2).Info("Evicted pod", "pod", klog.KObj(p))
		default:
			at := d.refused(st, p, result, before, now)
			st.why[p.UID] = why
			left = append(left, pending{name: name, why: why, blocked: true})
			if out.RetryAt.IsZero() || at.Before(out.RetryAt) {
				out.RetryAt = at
			}
		}
	}
	out.Pending = len(left)
	sort.SliceStable(left, func(i, j int) bool { return left[i].blocked && !left[j].blocked })
	for i, l := range left {
		if i == d.opts.MaxListed {
			out.Pods = append(out.Pods, fmt.Sprintf("and %d more", len(left)-i))
			break
		}
		out.Pods = append(out.Pods, l.name+" ("+l.why+")")
	}
	return out
}

// evict sends one eviction and returns its result and, unless the pod is
// evicted or gone, why it is still there.
func (d *Drainer) evict(ctx context.Context, node string, p *v1.Pod, st *nodeState) (string, string) {
	ev := &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}},
	}
	if d.opts.GracePeriodSeconds >= 0 {
		g := d.opts.GracePeriodSeconds
		ev.DeleteOptions.GracePeriodSeconds = &g
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
// resourceVersion.
func (d *Drainer) budgetVersions(p *v1.Pod) map[string]string {
	m := map[string]string{}
	for _, pdb := range d.matching(p) {
		m[pdb.Namespace+"/"+pdb.Name] = pdb.ResourceVersion
	}
	return m
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
