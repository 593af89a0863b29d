package controller

// The node queue's order: the nodes in the pipeline before the others.

import (
	"slices"
	"time"

	"golang.org/x/time/rate"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// newQueue is a queue on clk: per-item exponential backoff (5 ms to
// 2 min) under an overall rate limit, as client-go's default controller
// rate limiter. With first set, the keys it reports are served before the
// others (pipelineFirst); nil: one FIFO.
func newQueue(clk clock.WithTicker, name string, first func(key string) bool) workqueue.TypedRateLimitingInterface[string] {
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 2*time.Minute),
		&workqueue.TypedBucketRateLimiter[string]{Limiter: newLimiter()},
	)
	cfg := workqueue.TypedRateLimitingQueueConfig[string]{Name: name, Clock: clk}
	if first != nil {
		cfg.DelayingQueue = workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{
			Name: name, Clock: clk,
			Queue: workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{
				Name: name, Clock: clk, Queue: newPipelineFirst(first),
			}),
		})
	}
	return workqueue.NewTypedRateLimitingQueueWithConfig(limiter, cfg)
}

// newLimiter bounds the overall retry rate of the queue (10 per second,
// bursts of 100), as client-go's default controller rate limiter does.
func newLimiter() *rate.Limiter { return rate.NewLimiter(rate.Limit(10), 100) }

// outFirst reports whether the node cache shows the node out (decide.Marked:
// taken, draining, rebooting, waiting for its release).
func outFirst(nodes corelisters.NodeLister) func(string) bool {
	return func(key string) bool {
		n, err := nodes.Get(key)
		return err == nil && decide.Marked(n)
	}
}

// pipelineFirst is the node queue's storage (a workqueue.Queue): two FIFOs,
// the keys first reports (the nodes in the pipeline: at most the nodes out)
// served before the rest. The workqueue keeps its guarantees (a key is
// queued once, never handled by two workers at once); only the order
// changes.
//
// Why: when many nodes change at once (a kernel update sets the reboot
// condition on every node), each waiting node costs a sync and a write of
// its lifecycle conditions, and the few nodes just taken waited behind all
// of them for their drain to start (the 100-node benchmark's first ten
// drains started 0.3 to 0.6 s after their take). The nodes that hold a
// slot are the rollout's progress; the waiting nodes' syncs only describe
// them.
//
// A key added again while queued is looked at again (Touch), so that a node
// whose take the cache shows only after it was queued moves to the first
// FIFO. The workqueue calls these methods under its lock; first reads the
// node cache only.
type pipelineFirst struct {
	first       func(key string) bool
	front, rest []string
	inRest      map[string]bool
}

func newPipelineFirst(first func(string) bool) *pipelineFirst {
	return &pipelineFirst{first: first, inRest: map[string]bool{}}
}

// Push queues a new key at the end of its FIFO.
func (q *pipelineFirst) Push(key string) {
	if q.first(key) {
		q.front = append(q.front, key)
		return
	}
	q.rest = append(q.rest, key)
	q.inRest[key] = true
}

// Touch moves a queued key of the rest to the end of the first FIFO once
// first reports it.
func (q *pipelineFirst) Touch(key string) {
	if !q.inRest[key] || !q.first(key) {
		return
	}
	if i := slices.Index(q.rest, key); i >= 0 {
		q.rest = slices.Delete(q.rest, i, i+1)
	}
	delete(q.inRest, key)
	q.front = append(q.front, key)
}

// Len is the number of queued keys.
func (q *pipelineFirst) Len() int { return len(q.front) + len(q.rest) }

// Pop returns the first key of the first FIFO, else of the rest.
func (q *pipelineFirst) Pop() string {
	if len(q.front) > 0 {
		k := q.front[0]
		q.front[0] = ""
		q.front = q.front[1:]
		return k
	}
	k := q.rest[0]
	q.rest[0] = ""
	q.rest = q.rest[1:]
	delete(q.inRest, k)
	return k
}
