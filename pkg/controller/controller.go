package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/drain"
)

// admissionKey is the queue key of the admission pass. It cannot be a node
// name (node names are DNS subdomains).
const admissionKey = "@admission"

// Config configures a Controller.
type Config struct {
	// Decide is what the decisions depend on.
	Decide decide.Config
	// Drain configures evictions.
	Drain drain.Options
	// DryRun logs and records every decision as a DryRun event and writes
	// nothing else.
	DryRun bool
}

// Controller reboots nodes one slot at a time. Create it with New and start
// it with Run.
type Controller struct {
	client   kubernetes.Interface
	factory  informers.SharedInformerFactory
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	clock    clock.WithTicker
	cfg      Config
	metrics  *Metrics
	drainer  *drain.Drainer
	pods     *drain.PodWatches
	ready    atomic.Bool

	mu sync.Mutex
	// expectations are the nodes this controller took whose take the cache
	// does not show yet, with their resourceVersion before the take.
	expectations map[string]string
	// requestSeen is when a reboot-requested annotation was first seen.
	requestSeen map[string]time.Time
	// queued are the nodes announced with RebootQueued.
	queued map[string]bool
	// warned is the last warning announced per node while it waits.
	warned map[string]string
	// blocked is the last RebootBlocked message announced.
	blocked string
	// dryRun is the last decision announced per node in dry-run mode.
	dryRun map[string]string
}

// New builds a controller on a fresh informer factory. Nothing runs until
// Run. metrics must come from NewMetrics.
func New(client kubernetes.Interface, recorder record.EventRecorder, clk clock.WithTicker, cfg Config, metrics *Metrics) *Controller {
	factory := informers.NewSharedInformerFactory(client, 0)
	nodeInformer := factory.Core().V1().Nodes()
	pdbInformer := factory.Policy().V1().PodDisruptionBudgets()
	c := &Controller{
		client:   client,
		factory:  factory,
		nodes:    nodeInformer.Lister(),
		synced:   []cache.InformerSynced{nodeInformer.Informer().HasSynced, pdbInformer.Informer().HasSynced},
		recorder: recorder,
		clock:    clk,
		cfg:      cfg,
		metrics:  metrics,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedMaxOfRateLimiter(
				workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 2*time.Minute),
				&workqueue.TypedBucketRateLimiter[string]{Limiter: newLimiter()},
			),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodereboot", Clock: clk}),
		expectations: map[string]string{},
		requestSeen:  map[string]time.Time{},
		queued:       map[string]bool{},
		warned:       map[string]string{},
		dryRun:       map[string]string{},
	}
	dopts := cfg.Drain
	userHook := dopts.OnEviction
	dopts.OnEviction = func(r string) {
		metrics.Evictions.WithLabelValues(r).Inc()
		if userHook != nil {
			userHook(r)
		}
	}
	c.drainer = drain.New(client, pdbInformer.Lister(), recorder, clk, dopts)
	c.pods = drain.NewPodWatches(client, c.queue.Add)

	// Nodes are large; the controller needs neither managed fields nor the
	// list of images.
	_ = nodeInformer.Informer().SetTransform(func(obj any) (any, error) {
		if n, ok := obj.(*v1.Node); ok {
			n.ManagedFields = nil
			n.Status.Images = nil
		}
		return obj, nil
	})
	_, _ = nodeInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if n, ok := obj.(*v1.Node); ok {
				c.queue.Add(n.Name)
				c.queue.Add(admissionKey)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*v1.Node)
			n, ok2 := newObj.(*v1.Node)
			if !ok1 || !ok2 {
				return
			}
			c.observe(n)
			c.queue.Add(n.Name)
			if fingerprint(o, &c.cfg.Decide) != fingerprint(n, &c.cfg.Decide) {
				c.queue.Add(admissionKey)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*v1.Node); ok {
				c.queue.Add(n.Name)
				c.queue.Add(admissionKey)
			}
		},
	})
	return c
}

// HasSynced reports whether the caches are synced and workers run (the
// leader's readiness).
func (c *Controller) HasSynced() bool { return c.ready.Load() }

// Run starts the informers, waits for their caches, and runs workers until
// ctx is cancelled; it returns after every worker and every pod watch has
// stopped, so that nothing acts after Run returns.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx)
	defer c.queue.ShutDown()

	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	logger.Info("Waiting for informer caches to sync")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		return fmt.Errorf("caches not synced: %w", context.Cause(ctx))
	}
	c.ready.Store(true)
	defer c.ready.Store(false)
	c.queue.Add(admissionKey)

	logger.Info("Starting workers", "count", workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.runWorker, time.Second) })
	}
	<-ctx.Done()
	logger.Info("Stopping workers")
	c.queue.ShutDown()
	wg.Wait()
	c.pods.StopAll()
	logger.Info("Workers stopped")
	return nil
}

func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextWorkItem(ctx) {
	}
}

func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	if ctx.Err() != nil {
		return false
	}
	if err := c.syncHandler(ctx, key); err != nil {
		if apierrors.IsConflict(err) {
			klog.FromContext(ctx).V(2).Info("Conflict, retrying", "key", key, "err", err)
		} else {
			utilruntime.HandleErrorWithContext(ctx, err, "Sync failed, requeuing", "key", key)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// observe drops the expectation for a node whose cached version moved past
// the one it was taken from.
func (c *Controller) observe(n *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rv, ok := c.expectations[n.Name]; ok && rv != n.ResourceVersion {
		delete(c.expectations, n.Name)
	}
}

// fingerprint is what admission depends on for one node: a change of it
// runs an admission pass; other changes (heartbeats) do not.
func fingerprint(n *v1.Node, cfg *decide.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%t|%t|", n.Spec.Unschedulable, decide.IsReady(n))
	keys := make([]string, 0, len(n.Labels)+len(n.Annotations))
	for k, v := range n.Labels {
		keys = append(keys, "l:"+k+"="+v)
	}
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, contract.Prefix) {
			keys = append(keys, "a:"+k+"="+v)
		}
	}
	sort.Strings(keys)
	b.WriteString(strings.Join(keys, ","))
	for _, t := range cfg.Conditions {
		for _, cd := range n.Status.Conditions {
			if string(cd.Type) == t {
				fmt.Fprintf(&b, "|%s=%s@%d", t, cd.Status, cd.LastTransitionTime.Unix())
			}
		}
	}
	return b.String()
}

func (c *Controller) syncHandler(ctx context.Context, key string) error {
	if key == admissionKey {
		return c.admit(ctx)
	}
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "node", key)
	ctx = klog.NewContext(ctx, logger)
	n, err := c.nodes.Get(key)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	in := c.input(n)
	a := decide.Node(in)
	if a.Kind == decide.Drain {
		if c.cfg.DryRun {
			c.dryRunEvent(ctx, n.Name, a)
			return nil
		}
		pods, ok := c.pods.Pods(ctx, n.Name)
		if !ok {
			// The watch's first list requeues the node.
			return nil
		}
		st := c.drainer.Pass(ctx, n.Name, pods)
		in.Drain = &decide.DrainStatus{Pending: st.Pending, Blocked: st.Pods, RetryAt: st.RetryAt}
		a = decide.Node(in)
		logger.V(2).Info("Drain pass", "pending", st.Pending, "evicted", st.Evicted, "pods", st.Pods)
	}
	if s, _ := decide.StateOf(n); s != string(contract.StateDraining) {
		// Not (or no longer) draining: no pods to watch. A drain that
		// ends with a write stops here once the cache shows the write.
		c.stopDrain(n.Name)
	}
	return c.execute(ctx, n, a)
}

// stopDrain ends the node's pod watch and forgets its evictions.
func (c *Controller) stopDrain(node string) {
	c.pods.Stop(node)
	c.drainer.Forget(node)
}

// forget drops everything remembered about a deleted node.
func (c *Controller) forget(node string) {
	c.stopDrain(node)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.expectations, node)
	delete(c.requestSeen, node)
	delete(c.queued, node)
	delete(c.warned, node)
	delete(c.dryRun, node)
}

// input builds the decision input for a node, remembering when a
// reboot-requested annotation was first seen.
func (c *Controller) input(n *v1.Node) decide.Input {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := n.Annotations[contract.AnnotationRebootRequested]; ok {
		if _, seen := c.requestSeen[n.Name]; !seen {
			c.requestSeen[n.Name] = now
		}
	} else {
		delete(c.requestSeen, n.Name)
	}
	return decide.Input{Node: n, Config: &c.cfg.Decide, Now: now, RequestSeen: c.requestSeen[n.Name]}
}

// execute carries out an action on a node.
func (c *Controller) execute(ctx context.Context, n *v1.Node, a decide.Action) error {
	logger := klog.FromContext(ctx)
	switch a.Kind {
	case decide.Nothing:
		c.mu.Lock()
		delete(c.queued, n.Name)
		delete(c.warned, n.Name)
		delete(c.dryRun, n.Name)
		c.mu.Unlock()
		return nil
	case decide.Queue:
		c.queue.Add(admissionKey)
		return nil
	case decide.Wait:
		logger.V(4).Info("Waiting", "action", a.String())
		c.warnOnce(n.Name, a)
		if !a.Until.IsZero() {
			c.queue.AddAfter(n.Name, a.Until.Sub(c.clock.Now()))
		}
		return nil
	}
	if c.cfg.DryRun {
		c.dryRunEvent(ctx, n.Name, a)
		return nil
	}
	if err := c.patch(ctx, n, a.Patch); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("%s node %s: %w", a.Kind, n.Name, err)
	}
	logger.Info("Node updated", "action", a.Kind, "message", a.Message)
	c.mu.Lock()
	delete(c.warned, n.Name)
	c.mu.Unlock()
	ref := drain.NodeRef(n.Name)
	uncordoned := a.Patch.Unschedulable != nil && !*a.Patch.Unschedulable
	switch a.Kind {
	case decide.Cordon:
		c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonCordoned, a.Message)
	case decide.Authorize:
		c.metrics.DrainDuration.Observe(a.Elapsed.Seconds())
		if a.Reason == contract.ReasonDrainFailed {
			c.recorder.Event(ref, v1.EventTypeWarning, contract.ReasonDrainFailed, a.Message)
		} else {
			c.recorder.Eventf(ref, v1.EventTypeNormal, contract.ReasonDrained, "All pods evicted in %s", a.Elapsed.Round(time.Second))
		}
		c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonRebootAuthorized, a.Message)
	case decide.MarkRebooted:
		c.metrics.RebootDuration.Observe(a.Elapsed.Seconds())
		c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonRebooted, a.Message)
	case decide.Finish:
		c.metrics.Reboots.WithLabelValues(ResultCompleted).Inc()
		if uncordoned {
			c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonUncordoned, "Uncordoned after the reboot")
		}
		c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonRebootDone, a.Message)
	case decide.Fail:
		if a.Reason == contract.ReasonRebootTimeout {
			c.metrics.Reboots.WithLabelValues(ResultTimeout).Inc()
		} else {
			c.metrics.Reboots.WithLabelValues(ResultDrainFailed).Inc()
		}
		c.recorder.Event(ref, v1.EventTypeWarning, a.Reason, a.Message)
	case decide.AbandonDrain:
		c.metrics.Reboots.WithLabelValues(ResultDrainFailed).Inc()
		c.recorder.Event(ref, v1.EventTypeWarning, contract.ReasonDrainFailed, a.Message)
		if uncordoned {
			c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonUncordoned, "Uncordoned after a failed drain")
		}
	case decide.Release:
		if uncordoned {
			c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonUncordoned, a.Message)
		}
	case decide.Reset:
		c.metrics.InvalidAnnotations.Inc()
		c.recorder.Event(ref, v1.EventTypeWarning, contract.ReasonInvalidAnnotation, a.Message)
	}
	return nil
}

// warnOnce records a waiting node's warning the first time it is decided.
func (c *Controller) warnOnce(node string, a decide.Action) {
	c.mu.Lock()
	key := a.Reason + "|" + a.Until.String()
	if a.Reason == "" || c.warned[node] == key {
		if a.Reason == "" {
			delete(c.warned, node)
		}
		c.mu.Unlock()
		return
	}
	c.warned[node] = key
	c.mu.Unlock()
	c.recorder.Event(drain.NodeRef(node), v1.EventTypeWarning, a.Reason, a.Message)
}

// dryRunEvent logs and records a decision not carried out, once per
// distinct decision.
func (c *Controller) dryRunEvent(ctx context.Context, node string, a decide.Action) {
	msg := "would " + a.String()
	c.mu.Lock()
	if c.dryRun[node] == msg {
		c.mu.Unlock()
		return
	}
	c.dryRun[node] = msg
	c.mu.Unlock()
	klog.FromContext(ctx).Info("Dry run", "node", node, "decision", msg)
	c.recorder.Event(drain.NodeRef(node), v1.EventTypeNormal, contract.ReasonDryRun, msg)
}

// patch writes a decision's patch as a JSON merge patch, guarded by the
// resourceVersion the decision was made on.
func (c *Controller) patch(ctx context.Context, n *v1.Node, p *decide.Patch) error {
	data, err := MergePatch(p, n.ResourceVersion)
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, data, metav1.PatchOptions{})
	return err
}

// MergePatch renders a decision's patch as a JSON merge patch; a non-empty
// resourceVersion makes the API server refuse it (409 Conflict) if the node
// changed since.
func MergePatch(p *decide.Patch, resourceVersion string) ([]byte, error) {
	meta := map[string]any{}
	if resourceVersion != "" {
		meta["resourceVersion"] = resourceVersion
	}
	if len(p.Annotations) > 0 {
		ann := map[string]any{}
		for k, v := range p.Annotations {
			if v == nil {
				ann[k] = nil
			} else {
				ann[k] = *v
			}
		}
		meta["annotations"] = ann
	}
	doc := map[string]any{"metadata": meta}
	if p.Unschedulable != nil {
		doc["spec"] = map[string]any{"unschedulable": *p.Unschedulable}
	}
	return json.Marshal(doc)
}

// admit is the admission pass: it counts the nodes out, collects the nodes
// waiting for a slot, and takes the ones decide.Admit picks. It is the only
// place that takes nodes, and the workqueue never runs it twice at once.
func (c *Controller) admit(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	byName := make(map[string]*v1.Node, len(nodes))
	var cands []decide.Candidate
	var cl decide.Cluster
	counts := map[string]float64{}
	for _, n := range nodes {
		byName[n.Name] = n
	}

	c.mu.Lock()
	for name, rv := range c.expectations {
		if n, ok := byName[name]; !ok || n.ResourceVersion != rv {
			delete(c.expectations, name)
		}
	}
	expected := make(map[string]bool, len(c.expectations))
	for name := range c.expectations {
		expected[name] = true
	}
	c.mu.Unlock()

	for _, n := range nodes {
		if expected[n.Name] {
			cl.Out++
			counts[string(contract.StateDraining)]++
			continue
		}
		if s, out := decide.StateOf(n); out {
			cl.Out++
			if _, err := contract.ParseState(s); err != nil || s == "" {
				counts[NodesInvalid]++
			} else {
				counts[s]++
			}
			continue
		}
		if decide.Selected(n, &c.cfg.Decide) && !decide.IsReady(n) {
			cl.NotReady = append(cl.NotReady, n.Name)
		}
		if a := decide.Node(c.input(n)); a.Kind == decide.Queue {
			cands = append(cands, decide.Candidate{Name: n.Name, RequestTime: a.RequestTime})
		}
	}
	counts[NodesQueued] = float64(len(cands))
	for _, s := range gaugeStates {
		c.metrics.Nodes.WithLabelValues(s).Set(counts[s])
	}

	ad := decide.Admit(cands, cl, &c.cfg.Decide)
	for _, r := range decide.BlockedReasons {
		v := 0.0
		if r == ad.Blocked {
			v = 1
		}
		c.metrics.Blocked.WithLabelValues(r).Set(v)
	}
	c.announce(ad)
	if len(ad.Take) > 0 || ad.Blocked != "" {
		logger.V(2).Info("Admission", "out", cl.Out, "take", ad.Take, "waiting", ad.Waiting, "blocked", ad.BlockedMessage)
	}

	for _, name := range ad.Take {
		if err := c.take(ctx, byName[name]); err != nil {
			return err
		}
	}
	return nil
}

// announce records RebootQueued for nodes that start waiting and
// RebootBlocked when the reason admission is blocked changes.
func (c *Controller) announce(ad decide.Admission) {
	c.mu.Lock()
	waiting := map[string]bool{}
	var fresh []string
	for _, name := range ad.Waiting {
		waiting[name] = true
		if !c.queued[name] {
			c.queued[name] = true
			fresh = append(fresh, name)
		}
	}
	for name := range c.queued {
		if !waiting[name] {
			delete(c.queued, name)
		}
	}
	var blockedOn string
	if ad.BlockedMessage != c.blocked {
		c.blocked = ad.BlockedMessage
		if ad.Blocked != "" && len(ad.Waiting) > 0 {
			blockedOn = ad.Waiting[0]
		}
	}
	c.mu.Unlock()
	for _, name := range fresh {
		pos := 0
		for i, w := range ad.Waiting {
			if w == name {
				pos = i + 1
			}
		}
		c.recorder.Eventf(drain.NodeRef(name), v1.EventTypeNormal, contract.ReasonRebootQueued,
			"Reboot required; waiting for a slot (position %d of %d, --max-concurrent %d)", pos, len(ad.Waiting), c.cfg.Decide.MaxConcurrent)
	}
	if blockedOn != "" {
		c.recorder.Event(drain.NodeRef(blockedOn), v1.EventTypeWarning, contract.ReasonRebootBlocked, ad.BlockedMessage)
	}
}

// take starts the pipeline on a node with one patch: cordon, state
// Draining, state-since, cordoned-by-us (only if it was schedulable).
func (c *Controller) take(ctx context.Context, n *v1.Node) error {
	logger := klog.FromContext(ctx).WithValues("node", n.Name)
	p := decide.TakePatch(n, c.clock.Now())
	if c.cfg.DryRun {
		c.dryRunEvent(ctx, n.Name, decide.Action{Kind: "Take", Message: "cordon and drain"})
		return nil
	}
	err := c.patch(ctx, n, p)
	switch {
	case apierrors.IsConflict(err):
		// Decided on an old version: look again.
		return err
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		// The patch may have been applied: count the node out until the
		// cache shows a newer version of it.
		c.expect(n)
		return fmt.Errorf("take node %s: %w", n.Name, err)
	}
	c.expect(n)
	logger.Info("Took node for reboot")
	ref := drain.NodeRef(n.Name)
	if _, ours := p.Annotations[contract.AnnotationCordonedByUs]; ours {
		c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonCordoned, "Cordoned for a reboot")
	}
	c.recorder.Eventf(ref, v1.EventTypeNormal, contract.ReasonDraining, "Draining for a reboot (timeout %s)", c.cfg.Decide.DrainTimeout)
	c.mu.Lock()
	delete(c.queued, n.Name)
	c.mu.Unlock()
	c.queue.Add(n.Name)
	return nil
}

func (c *Controller) expect(n *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expectations[n.Name] = n.ResourceVersion
}

// newLimiter bounds the overall retry rate of the queue (10 per second,
// bursts of 100), as client-go's default controller rate limiter does.
func newLimiter() *rate.Limiter { return rate.NewLimiter(rate.Limit(10), 100) }
