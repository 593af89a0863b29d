package drain

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
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
