package detector

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
	"github.com/nodereboot/nodereboot/pkg/sentinel"
)

// reporter writes the node condition from the latest observation: on every
// new observation, on node changes (someone else changed or removed the
// condition) and when the heartbeat is due. Failed writes are retried with
// backoff; nothing is written while nothing changed between heartbeats.
type reporter struct {
	client    Client
	lister    corelisters.NodeLister
	nodeName  string
	bootID    string
	condType  string
	heartbeat time.Duration
	clock     clock.WithTicker
	recorder  record.EventRecorder
	metrics   *metrics
	// retry is the backoff of failed writes; copied, never reset in place.
	retry wait.Backoff

	wake chan struct{} // new observation or node change; capacity 1

	mu     sync.Mutex
	latest *sentinel.Observation

	reported atomic.Bool // the condition on the API matches an observation

	// lastWritten is the condition as the API server returned it after our
	// last write, for the node with lastUID: the informer's cache may not
	// have caught up yet.
	lastWritten *v1.NodeCondition
	lastUID     types.UID
	lastRV      string
	failures    wait.Backoff
}

// defaultWriteRetry is how condition and annotation writes are retried.
var defaultWriteRetry = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 1 << 30, Cap: 30 * time.Second}

// observe records a new observation (called from the source's goroutine).
func (r *reporter) observe(o sentinel.Observation) {
	r.mu.Lock()
	r.latest = &o
	r.mu.Unlock()
	r.metrics.observed(o.Status)
	r.poke()
}

// poke wakes the loop without blocking.
func (r *reporter) poke() { poke(r.wake) }

// run is the reporter's loop. One timer serves the heartbeat and retries.
func (r *reporter) run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("reporter")
	ctx = klog.NewContext(ctx, logger)
	r.failures = r.retry
	runLoop(ctx, r.clock, r.wake, r.sync)
}

// sync writes the condition when needed and returns when to look again (0:
// only on the next wake).
func (r *reporter) sync(ctx context.Context) time.Duration {
	logger := klog.FromContext(ctx)
	r.mu.Lock()
	obs := r.latest
	r.mu.Unlock()
	if obs == nil {
		return 0
	}
	node, err := r.lister.Get(r.nodeName)
	if apierrors.IsNotFound(err) {
		logger.V(2).Info("Node not found; waiting for it", "node", r.nodeName)
		return 0
	} else if err != nil {
		logger.Error(err, "Cannot read the node from the cache")
		return r.failures.Step()
	}
	prev := r.previous(node)
	now := r.clock.Now()
	// Until this process wrote the condition once, it writes it even when
	// it is unchanged (a fresh heartbeat after every start).
	// The message names the boot it was observed in, within the cap:
	// the controller reads it to tell a condition about this boot from
	// one left over from before a reboot.
	o := *obs
	o.Message = contract.ConditionMessage(sanitize.Line(o.Message, sanitize.MaxMessage-64), r.bootID)
	cond, write := nextCondition(prev, r.condType, o, now, r.heartbeat, r.lastWritten == nil)
	if !write {
		r.reported.Store(true)
		return untilHeartbeat(prev, now, r.heartbeat)
	}
	written, rv, err := r.patch(ctx, cond)
	if err != nil {
		r.metrics.error(ErrorConditionWrite)
		delay := r.failures.Step()
		logger.Error(err, "Cannot write the node condition; retrying", "condition", r.condType, "retryIn", delay)
		return delay
	}
	r.failures = r.retry
	r.metrics.conditionWrites.Inc()
	r.lastWritten, r.lastUID, r.lastRV = written, node.UID, rv
	r.reported.Store(true)
	if eventType, reason, ok := transitionEvent(prev, cond); ok {
		r.recorder.Event(contract.NodeRef(r.nodeName), eventType, reason, cond.Message)
		logger.Info("Reboot-required condition changed", "status", cond.Status, "reason", cond.Reason, "message", cond.Message)
	} else {
		logger.V(4).Info("Condition written", "status", cond.Status, "reason", cond.Reason)
	}
	return untilHeartbeat(written, r.clock.Now(), r.heartbeat)
}

// previous is the condition the node has now. The detector is the only
// writer of its condition, so after a write of ours, what we wrote is the
// truth until the cache shows a later change of the node (the cache lags
// behind our own writes). Before our first write (a restart) and when the
// node was recreated, the cache is the truth.
func (r *reporter) previous(node *v1.Node) *v1.NodeCondition {
	cached := contract.Condition(node, r.condType)
	if r.lastWritten == nil || node.UID != r.lastUID || laterVersion(node.ResourceVersion, r.lastRV) {
		return cached
	}
	return r.lastWritten
}

// laterVersion reports whether resource version a is later than b.
// Resource versions are opaque, but the API server's are etcd revisions:
// when both are integers, a larger one is later. Otherwise nothing is known.
func laterVersion(a, b string) bool {
	x, ok1 := contract.ResourceVersionOrder(a)
	y, ok2 := contract.ResourceVersionOrder(b)
	return ok1 && ok2 && x > y
}

// untilHeartbeat is how long until cond's heartbeat is due (at least a
// millisecond).
func untilHeartbeat(cond *v1.NodeCondition, now time.Time, heartbeat time.Duration) time.Duration {
	d := cond.LastHeartbeatTime.Add(heartbeat).Sub(now)
	return max(d, time.Millisecond)
}

// patch writes one condition with a strategic-merge patch of nodes/status,
// which merges conditions by type and leaves the others alone. It returns
// the condition as stored and the node's new resource version.
func (r *reporter) patch(ctx context.Context, cond v1.NodeCondition) (*v1.NodeCondition, string, error) {
	body, err := contract.ConditionsPatch([]v1.NodeCondition{cond}, "")
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	node, err := r.client.PatchNode(ctx, r.nodeName, types.StrategicMergePatchType, body, "status")
	if err != nil {
		return nil, "", fmt.Errorf("patch nodes/%s/status: %w", r.nodeName, err)
	}
	if c := contract.Condition(node, r.condType); c != nil {
		return c.DeepCopy(), node.ResourceVersion, nil
	}
	return &cond, node.ResourceVersion, nil
}
