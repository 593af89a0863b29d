package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
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
	"github.com/nodereboot/nodereboot/pkg/controller/slots"
	"github.com/nodereboot/nodereboot/pkg/drain"
	"github.com/nodereboot/nodereboot/pkg/gates"
	"github.com/nodereboot/nodereboot/pkg/notify"
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
	// BlockingPods, when set, blocks the reboot of a node with a matching
	// pod (--blocking-pod-selector).
	BlockingPods *gates.PodBlocker
	// Alerts, when set, blocks reboots while Prometheus has alerts that
	// block them (--prometheus-url).
	Alerts *gates.AlertChecker
	// PauseNamespace is where the pause ConfigMap (contract.ConfigMapName)
	// is watched; "" disables the pause.
	PauseNamespace string
	// RecheckInterval is how often a gate that cannot be watched (alerts,
	// the pods of a node that is not drained) is looked at again while a
	// node waits on it.
	RecheckInterval time.Duration
	// Notifier, when set, is told about drains, reboots, uncordons and
	// failures.
	Notifier notify.Notifier
	// Namespace holds the slot record (contract.SlotsConfigMapName);
	// default options.DefaultNamespace.
	Namespace string
	// Identity names this controller on the slot record (the leader
	// election identity); default the component name.
	Identity string
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
	// slots is the slot record: the nodes this controller put out, and
	// the leader term that fences a deposed leader's writes.
	slots *slots.Record
	// stop ends Run when the slot record shows a newer leader.
	stop context.CancelCauseFunc

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
	// rebootRV is, per node, the resourceVersion of the write that marked
	// it Rebooted (when the new boot was seen); fresh names the reboot
	// conditions seen written in a later version (decide.Input.Fresh).
	rebootRV map[string]uint64
	fresh    map[string]map[string]bool
	// written is, per node, the resourceVersion of the controller's last
	// write to it, until the cache shows it.
	written map[string]uint64
	// pause watches the pause ConfigMap (nil: no pause).
	pause *gates.PauseWatch
	// podBlocks and alertBlock are the last blocking answers of the
	// blocking-pod and alert gates, reused until their Until.
	podBlocks  map[string]decide.Block
	alertBlock *decide.Block
	// authBlocks are the drained nodes whose authorization a gate holds
	// back, with the gate's reason (for nodereboot_reboot_blocked).
	authBlocks map[string]string
	// admitBlocked are the reasons the last admission pass was blocked for.
	admitBlocked map[string]bool
	// nodeBlocked is the RebootBlocked message last announced per waiting
	// node held back by a gate of its own.
	nodeBlocked map[string]string
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
		rebootRV:     map[string]uint64{},
		fresh:        map[string]map[string]bool{},
		podBlocks:    map[string]decide.Block{},
		written:      map[string]uint64{},
		authBlocks:   map[string]string{},
		admitBlocked: map[string]bool{},
		nodeBlocked:  map[string]string{},
	}
	if cfg.RecheckInterval <= 0 {
		c.cfg.RecheckInterval = time.Minute
	}
	if c.cfg.Namespace == "" {
		c.cfg.Namespace = "nodereboot-system"
	}
	if c.cfg.Identity == "" {
		c.cfg.Identity = contract.ControllerComponent
	}
	c.slots = slots.New(client, c.cfg.Namespace, c.cfg.Identity)
	if cfg.PauseNamespace != "" {
		c.pause = gates.NewPauseWatch(client, cfg.PauseNamespace, func() { c.queue.Add(admissionKey) })
		c.synced = append(c.synced, c.pause.HasSynced)
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
	_, _ = pdbInformer.Informer().AddEventHandler(c.drainer.BudgetHandler(c.queue.Add)) // refused evictions retried when their budget allows
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
			c.observeConditions(o, n)
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
	ctx, c.stop = context.WithCancelCause(ctx)
	defer c.stop(nil)

	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	if c.pause != nil {
		c.pause.Start(ctx)
		defer c.pause.Shutdown()
	}
	logger.Info("Waiting for informer caches to sync")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		return fmt.Errorf("caches not synced: %w", context.Cause(ctx))
	}
	if err := c.startTerm(ctx); err != nil {
		return err
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
	if err := context.Cause(ctx); errors.Is(err, slots.ErrDeposed) {
		return err
	}
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

// behindOwnWrite reports whether the cached node is older than the
// controller's last write to it (and forgets the write once it is not).
// Resource versions that do not parse as integers are not compared.
func (c *Controller) behindOwnWrite(n *v1.Node) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.written[n.Name]
	if !ok {
		return false
	}
	rv, err := strconv.ParseUint(n.ResourceVersion, 10, 64)
	if err == nil && rv < w {
		return true
	}
	delete(c.written, n.Name)
	return false
}

// observeConditions records the reboot conditions written in a version of
// the node later than the one that marked it Rebooted: they are about the
// new boot. Resource versions are opaque, but the API server's are etcd
// revisions; when they do not parse as integers nothing is recorded and the
// conditions' timestamps decide (decide.Stale).
func (c *Controller) observeConditions(o, n *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	base, ok := c.rebootRV[n.Name]
	if !ok {
		return
	}
	rv, err := strconv.ParseUint(n.ResourceVersion, 10, 64)
	if err != nil || rv <= base {
		return
	}
	for _, t := range c.cfg.Decide.Conditions {
		if conditionOf(o, t) != conditionOf(n, t) {
			if c.fresh[n.Name] == nil {
				c.fresh[n.Name] = map[string]bool{}
			}
			c.fresh[n.Name][t] = true
		}
	}
}

// conditionOf returns the node's condition of type t (zero if none), to
// compare versions of it.
func conditionOf(n *v1.Node, t string) v1.NodeCondition {
	for _, cd := range n.Status.Conditions {
		if string(cd.Type) == t {
			return cd
		}
	}
	return v1.NodeCondition{}
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
		if _, held := c.slots.Get(key); held {
			// A deleted node is out of the pipeline for good.
			return c.releaseSlot(ctx, key)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if c.behindOwnWrite(n) {
		// The cache does not show our last write to this node yet: a
		// decision now would be refused (409); the watch event of the
		// write requeues the node.
		return nil
	}
	in := c.input(n)
	if in.Slot != nil && !decide.KeepsSlot(in) && !c.expected(n) {
		// Out of the pipeline (the cache shows it, and no take of ours
		// can still land): give the slot back.
		if err := c.releaseSlot(ctx, n.Name); err != nil {
			return err
		}
		in.Slot = nil
	}
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
		if a.Kind == decide.Authorize {
			// The gates again, right before the authorization.
			if in.Gate = c.authorizeGate(ctx, n.Name, pods, in.Now); in.Gate != nil {
				a = decide.Node(in)
			}
			c.setAuthBlock(n.Name, in.Gate)
		}
	}
	if s, _ := decide.StateOf(n); s != string(contract.StateDraining) {
		// Not (or no longer) draining: no pods to watch. A drain that
		// ends with a write stops here once the cache shows the write.
		c.stopDrain(n.Name)
		c.setAuthBlock(n.Name, nil)
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
	delete(c.rebootRV, node)
	delete(c.fresh, node)
	delete(c.podBlocks, node)
	delete(c.nodeBlocked, node)
	delete(c.authBlocks, node)
	delete(c.written, node)
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
	var fresh map[string]bool
	if f := c.fresh[n.Name]; len(f) > 0 {
		fresh = make(map[string]bool, len(f))
		for t := range f {
			fresh[t] = true
		}
	}
	return decide.Input{Node: n, Config: &c.cfg.Decide, Now: now, RequestSeen: c.requestSeen[n.Name], Fresh: fresh, Slot: c.slotOf(n)}
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
		if !a.Until.IsZero() {
			c.queue.AddAfter(n.Name, a.Until.Sub(c.clock.Now()))
		}
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
	written, err := c.patch(ctx, n, a.Patch)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("%s node %s: %w", a.Kind, n.Name, err)
	}
	logger.Info("Node updated", "action", a.Kind, "message", a.Message)
	if in := c.input(written); in.Slot != nil && !decide.KeepsSlot(in) {
		if err := c.releaseSlot(ctx, n.Name); err != nil {
			return err
		}
	}
	c.mu.Lock()
	delete(c.warned, n.Name)
	if rv, err := strconv.ParseUint(written.ResourceVersion, 10, 64); err == nil {
		c.written[n.Name] = rv
	}
	if a.Kind == decide.MarkRebooted {
		// Conditions written after this version are about the new boot.
		delete(c.fresh, n.Name)
		if rv, err := strconv.ParseUint(written.ResourceVersion, 10, 64); err == nil {
			c.rebootRV[n.Name] = rv
		} else {
			delete(c.rebootRV, n.Name)
		}
	}
	c.mu.Unlock()
	ref := drain.NodeRef(n.Name)
	uncordoned := a.Patch.Unschedulable != nil && !*a.Patch.Unschedulable
	switch a.Kind {
	case decide.Authorize, decide.Finish, decide.Fail, decide.AbandonDrain:
		step := notify.StepFailure
		switch a.Kind {
		case decide.Authorize:
			step = notify.StepReboot
		case decide.Finish:
			step = notify.StepUncordon
		}
		c.notify(step, n.Name, a.Reason, a.Message)
	}
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
		switch a.Reason {
		case contract.ReasonRebootTimeout:
			c.metrics.Reboots.WithLabelValues(ResultTimeout).Inc()
		case contract.ReasonRebootBlocked:
			c.metrics.Reboots.WithLabelValues(ResultBlocked).Inc()
		default:
			c.metrics.Reboots.WithLabelValues(ResultDrainFailed).Inc()
		}
		c.recorder.Event(ref, v1.EventTypeWarning, a.Reason, a.Message)
	case decide.AbandonDrain:
		if a.Reason == contract.ReasonRebootBlocked {
			c.metrics.Reboots.WithLabelValues(ResultBlocked).Inc()
		} else {
			c.metrics.Reboots.WithLabelValues(ResultDrainFailed).Inc()
		}
		c.recorder.Event(ref, v1.EventTypeWarning, a.Reason, a.Message)
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

// warnOnce records a waiting node's warning the first time it is decided
// (and again when the warning's message changes).
func (c *Controller) warnOnce(node string, a decide.Action) {
	c.mu.Lock()
	key := a.Reason + "|" + a.Message
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
func (c *Controller) patch(ctx context.Context, n *v1.Node, p *decide.Patch) (*v1.Node, error) {
	data, err := MergePatch(p, n.ResourceVersion)
	if err != nil {
		return nil, err
	}
	return c.client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, data, metav1.PatchOptions{})
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
	if len(p.Labels) > 0 {
		l := map[string]any{}
		for k, v := range p.Labels {
			if v == nil {
				l[k] = nil
			} else {
				l[k] = *v
			}
		}
		meta["labels"] = l
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

	held := map[string]bool{}
	for _, name := range c.slots.Nodes() {
		held[name] = true
		if _, ok := byName[name]; !ok {
			// A node of the record that is gone: counted until
			// its sync (on the delete) gives the slot back.
			cl.Out++
		}
	}
	for _, n := range nodes {
		// Out: what the slot record names (the controller's own
		// count, which no node writer can change), and every node
		// marked as out, whoever marked it.
		if held[n.Name] || expected[n.Name] || decide.Marked(n) {
			cl.Out++
			if decide.IsControlPlane(n) {
				cl.OutControlPlane++
			}
			s, stated := decide.StateOf(n)
			switch {
			case !stated:
				counts[string(contract.StateDraining)]++
			case !held[n.Name]:
				counts[NodesInvalid]++
			default:
				if _, err := contract.ParseState(s); err != nil || s == "" {
					counts[NodesInvalid]++
				} else {
					counts[s]++
				}
			}
			continue
		}
		if decide.Selected(n, &c.cfg.Decide) && !decide.IsReady(n) {
			cl.NotReady = append(cl.NotReady, n.Name)
		}
		if a := decide.Node(c.input(n)); a.Kind == decide.Queue {
			cands = append(cands, decide.Candidate{Name: n.Name, RequestTime: a.RequestTime, ControlPlane: decide.IsControlPlane(n)})
		}
	}
	counts[NodesQueued] = float64(len(cands))
	for _, s := range gaugeStates {
		c.metrics.Nodes.WithLabelValues(s).Set(counts[s])
	}

	now := c.clock.Now()
	if c.pause != nil {
		if paused, why := c.pause.Paused(); paused {
			msg := fmt.Sprintf("paused (%s annotation on ConfigMap %s/%s)", contract.AnnotationPaused, c.cfg.PauseNamespace, contract.ConfigMapName)
			if why != "" {
				msg += ": " + why
			}
			cl.Blocks = append(cl.Blocks, decide.Block{Reason: decide.BlockedPaused, Message: msg})
		}
	}
	ad := decide.Admit(cands, cl, &c.cfg.Decide, now)
	// The gates that cost a request are asked only when a node would be
	// taken now: the alerts once, the blocking pods of each node about to
	// be taken (a blocked node lets the next one in the queue go).
	if len(ad.Take) > 0 {
		if b := c.alertsBlock(ctx, now); b != nil {
			cl.Blocks = append(cl.Blocks, *b)
			ad = decide.Admit(cands, cl, &c.cfg.Decide, now)
		}
	}
	if c.cfg.BlockingPods != nil {
		index := make(map[string]int, len(cands))
		for i, cd := range cands {
			index[cd.Name] = i
		}
		checked := map[string]bool{}
		for again := true; again; {
			again = false
			for _, name := range ad.Take {
				if checked[name] {
					continue
				}
				checked[name] = true
				if b := c.podBlock(ctx, name, now); b != nil {
					cands[index[name]].Block = b
					again = true
				}
			}
			if again {
				ad = decide.Admit(cands, cl, &c.cfg.Decide, now)
			}
		}
	}
	blocked := map[string]bool{}
	for _, b := range ad.Blocks {
		blocked[b.Reason] = true
	}
	for _, b := range ad.NodeBlocks {
		blocked[b.Reason] = true
	}
	c.mu.Lock()
	// Waiting nodes not looked at in this pass (no free slot) keep their
	// last known block.
	for _, name := range ad.Waiting {
		if b, ok := c.podBlocks[name]; ok {
			blocked[b.Reason] = true
		}
	}
	c.admitBlocked = blocked
	c.mu.Unlock()
	c.updateBlockedMetric()
	c.announce(ad)
	if len(ad.Take) > 0 || ad.Blocked() {
		logger.V(2).Info("Admission", "out", cl.Out, "take", ad.Take, "waiting", ad.Waiting, "blocked", ad.BlockedMessage())
	}
	if !ad.Until.IsZero() {
		// A block lifts by itself then (the window opens, a blocker
		// is looked at again).
		c.queue.AddAfter(admissionKey, ad.Until.Sub(now))
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
	if msg := ad.BlockedMessage(); msg != c.blocked {
		c.blocked = msg
		if ad.Blocked() && len(ad.Waiting) > 0 {
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
		c.recorder.Event(drain.NodeRef(blockedOn), v1.EventTypeWarning, contract.ReasonRebootBlocked, ad.BlockedMessage())
	}
	// Nodes held back by a gate of their own: one event per change.
	c.mu.Lock()
	var nodeEvents [][2]string
	for name, b := range ad.NodeBlocks {
		if c.nodeBlocked[name] != b.Message {
			c.nodeBlocked[name] = b.Message
			nodeEvents = append(nodeEvents, [2]string{name, b.Message})
		}
	}
	for name := range c.nodeBlocked {
		if _, ok := ad.NodeBlocks[name]; !ok && !waiting[name] {
			delete(c.nodeBlocked, name)
		}
	}
	c.mu.Unlock()
	sort.Slice(nodeEvents, func(i, j int) bool { return nodeEvents[i][0] < nodeEvents[j][0] })
	for _, e := range nodeEvents {
		c.recorder.Event(drain.NodeRef(e[0]), v1.EventTypeWarning, contract.ReasonRebootBlocked, e[1])
	}
}

// updateBlockedMetric sets nodereboot_reboot_blocked from the last
// admission pass and the drained nodes held back before their
// authorization.
func (c *Controller) updateBlockedMetric() {
	c.mu.Lock()
	blocked := maps.Clone(c.admitBlocked)
	for _, r := range c.authBlocks {
		blocked[r] = true
	}
	c.mu.Unlock()
	for _, r := range decide.BlockedReasons {
		v := 0.0
		if blocked[r] {
			v = 1
		}
		c.metrics.Blocked.WithLabelValues(r).Set(v)
	}
}

// setAuthBlock records the gate (nil: none) holding back a drained node's
// authorization.
func (c *Controller) setAuthBlock(node string, b *decide.Block) {
	c.mu.Lock()
	old, had := c.authBlocks[node]
	if b == nil {
		delete(c.authBlocks, node)
	} else {
		c.authBlocks[node] = b.Reason
	}
	changed := (b == nil && had) || (b != nil && (!had || old != b.Reason))
	c.mu.Unlock()
	if changed {
		c.updateBlockedMetric()
	}
}

// alertsBlock asks Prometheus for blocking alerts (nil: none, or no
// Prometheus configured). A blocking answer is reused until it is due
// again (--blocked-recheck-interval); a clear one never is. An unreachable
// Prometheus blocks.
func (c *Controller) alertsBlock(ctx context.Context, now time.Time) *decide.Block {
	if c.cfg.Alerts == nil {
		return nil
	}
	c.mu.Lock()
	if b := c.alertBlock; b != nil && now.Before(b.Until) {
		cp := *b
		c.mu.Unlock()
		return &cp
	}
	c.mu.Unlock()
	names, err := c.cfg.Alerts.Active(ctx)
	var b *decide.Block
	until := now.Add(c.cfg.RecheckInterval)
	switch {
	case err != nil:
		klog.FromContext(ctx).Info("Cannot ask Prometheus for alerts: blocking reboots", "err", err)
		b = &decide.Block{Reason: decide.BlockedPrometheus, Until: until,
			Message: fmt.Sprintf("cannot ask Prometheus for alerts, so reboots are blocked (fail safe): %v", err)}
	case len(names) > 0:
		b = &decide.Block{Reason: decide.BlockedAlerts, Until: until, Message: gates.AlertsMessage(names)}
	}
	c.mu.Lock()
	c.alertBlock = b
	c.mu.Unlock()
	return b
}

// podBlock looks up the blocking pods of a node about to be taken (nil:
// none). A blocking answer is reused until it is due again.
func (c *Controller) podBlock(ctx context.Context, node string, now time.Time) *decide.Block {
	c.mu.Lock()
	if b, ok := c.podBlocks[node]; ok && now.Before(b.Until) {
		c.mu.Unlock()
		return &b
	}
	c.mu.Unlock()
	pods, err := c.cfg.BlockingPods.List(ctx, c.client, node)
	until := now.Add(c.cfg.RecheckInterval)
	var b *decide.Block
	switch {
	case err != nil:
		b = &decide.Block{Reason: decide.BlockedPods, Until: until,
			Message: fmt.Sprintf("cannot look up blocking pods, so the reboot is blocked (fail safe): %v", err)}
	case len(pods) > 0:
		b = &decide.Block{Reason: decide.BlockedPods, Until: until, Message: gates.PodsMessage(pods)}
	}
	c.mu.Lock()
	if b != nil {
		c.podBlocks[node] = *b
	} else {
		delete(c.podBlocks, node)
	}
	c.mu.Unlock()
	return b
}

// authorizeGate checks the gates again for a drained node, right before
// its authorization: its blocking pods (from its pod watch, no request)
// and the alerts.
func (c *Controller) authorizeGate(ctx context.Context, node string, pods []*v1.Pod, now time.Time) *decide.Block {
	if c.cfg.BlockingPods != nil {
		if names := c.cfg.BlockingPods.Match(node, pods); len(names) > 0 {
			// The pod watch requeues the node when they go.
			return &decide.Block{Reason: decide.BlockedPods, Message: gates.PodsMessage(names)}
		}
	}
	return c.alertsBlock(ctx, now)
}

// notify hands a step to the notifier (it never blocks).
func (c *Controller) notify(step notify.Step, node, reason, msg string) {
	if c.cfg.Notifier == nil || c.cfg.DryRun {
		return
	}
	c.cfg.Notifier.Notify(notify.Event{Step: step, Node: node, Reason: reason, Message: msg, Time: c.clock.Now()})
}

// take starts the pipeline on a node with one patch: cordon, state
// Draining, state-since, cordoned-by-us (only if it was schedulable).
func (c *Controller) take(ctx context.Context, n *v1.Node) error {
	logger := klog.FromContext(ctx).WithValues("node", n.Name)
	p := decide.TakePatch(n, c.clock.Now(), &c.cfg.Decide)
	if c.cfg.DryRun {
		c.dryRunEvent(ctx, n.Name, decide.Action{Kind: "Take", Message: "cordon and drain"})
		return nil
	}
	// From here on the take may land: the node counts as out and keeps
	// its slot until the cache shows a newer version of it.
	c.expect(n)
	// The slot first: a take the record does not show never happens, so
	// every node this controller puts out is counted, by it and by the
	// next leader, before the node is written.
	if err := c.holdSlot(ctx, n.Name); err != nil {
		c.unexpect(n.Name)
		return err
	}
	_, err := c.patch(ctx, n, p)
	switch {
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		// Refused: the node was not taken. Give the slot back; on a
		// conflict, look again.
		c.unexpect(n.Name)
		if rerr := c.releaseSlot(ctx, n.Name); rerr != nil {
			return rerr
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	case err != nil:
		// The patch may have been applied: the node stays counted and
		// keeps its slot until the cache shows a newer version of it.
		return fmt.Errorf("take node %s: %w", n.Name, err)
	}
	logger.Info("Took node for reboot")
	ref := drain.NodeRef(n.Name)
	if _, ours := p.Annotations[contract.AnnotationCordonedByUs]; ours {
		c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonCordoned, "Cordoned for a reboot")
	}
	c.recorder.Eventf(ref, v1.EventTypeNormal, contract.ReasonDraining, "Draining for a reboot (timeout %s)", c.cfg.Decide.DrainTimeout)
	c.notify(notify.StepDrain, n.Name, contract.ReasonDraining, fmt.Sprintf("cordoned; draining for a reboot (timeout %s)", c.cfg.Decide.DrainTimeout))
	c.mu.Lock()
	delete(c.queued, n.Name)
	delete(c.podBlocks, n.Name)
	delete(c.nodeBlocked, n.Name)
	delete(c.rebootRV, n.Name)
	delete(c.fresh, n.Name)
	c.mu.Unlock()
	c.queue.Add(n.Name)
	return nil
}

func (c *Controller) expect(n *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expectations[n.Name] = n.ResourceVersion
}

// unexpect drops the expectation of a take that was refused.
func (c *Controller) unexpect(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.expectations, node)
}

// startTerm makes this controller the holder of the slot record for a new
// term, then fences every node holding a slot: it writes the term onto it,
// so that any write a deposed leader still has in flight to that node
// (guarded by an older resourceVersion) is refused by the API server. A
// deposed leader's write of the record is refused by the record's own
// resourceVersion. Nothing is decided before the fence is up.
func (c *Controller) startTerm(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if c.cfg.DryRun {
		return nil
	}
	adopt := func() []string {
		// First start with a record (an upgrade from a version
		// without it): the nodes already in the pipeline keep their
		// slots — at most --max-concurrent of them, the longest in
		// the pipeline first, so that even states forged before the
		// upgrade never put more nodes out than allowed. The others
		// are reset like any state the controller did not write.
		nodes, _ := c.nodes.List(labels.Everything())
		type stated struct {
			name  string
			since string
		}
		var out []stated
		for _, n := range nodes {
			if s, ok := decide.StateOf(n); ok {
				if st, err := contract.ParseState(s); err == nil && st.Active() {
					out = append(out, stated{n.Name, n.Annotations[contract.AnnotationStateSince]})
				}
			}
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].since != out[j].since {
				return out[i].since < out[j].since
			}
			return out[i].name < out[j].name
		})
		var names []string
		for i := 0; i < len(out) && i < c.cfg.Decide.MaxConcurrent; i++ {
			names = append(names, out[i].name)
		}
		return names
	}
	term, err := c.slots.Acquire(ctx, c.clock.Now(), adopt)
	if err != nil {
		return err
	}
	value := strconv.FormatInt(term, 10)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{contract.AnnotationTerm: value}}})
	for _, name := range c.slots.Nodes() {
		_, err := c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: contract.ControllerComponent})
		switch {
		case apierrors.IsNotFound(err):
			if err := c.slots.Release(ctx, name); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("fence node %s for term %d: %w", name, term, err)
		}
	}
	logger.Info("Slot record acquired", "term", term, "slots", c.slots.Nodes())
	return nil
}

// slotOf returns the node's slot in the record (nil: none). In dry-run
// mode nothing is recorded: a node that is marked counts as holding one.
func (c *Controller) slotOf(n *v1.Node) *decide.Slot {
	if c.cfg.DryRun {
		if decide.Marked(n) {
			return &decide.Slot{Since: n.CreationTimestamp.Time}
		}
		return nil
	}
	if s, ok := c.slots.Get(n.Name); ok {
		return &decide.Slot{Since: s.Since}
	}
	return nil
}

// holdSlot records the node in the slot record before it is taken.
func (c *Controller) holdSlot(ctx context.Context, node string) error {
	return c.slotWritten(c.slots.Hold(ctx, node, c.clock.Now()))
}

// releaseSlot removes the node from the slot record; it must carry nothing
// that puts it out (decide.KeepsSlot).
func (c *Controller) releaseSlot(ctx context.Context, node string) error {
	if c.cfg.DryRun {
		return nil
	}
	if err := c.slotWritten(c.slots.Release(ctx, node)); err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Slot released", "node", node)
	c.queue.Add(admissionKey)
	return nil
}

// slotWritten stops the controller when a write of the slot record showed
// a newer leader: every further write would be refused anyway.
func (c *Controller) slotWritten(err error) error {
	if errors.Is(err, slots.ErrDeposed) && c.stop != nil {
		c.stop(err)
	}
	return err
}

// expected reports whether a take of this controller may still land on the
// node: the cache still shows the version it was taken from.
func (c *Controller) expected(n *v1.Node) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	rv, ok := c.expectations[n.Name]
	return ok && rv == n.ResourceVersion
}

// newLimiter bounds the overall retry rate of the queue (10 per second,
// bursts of 100), as client-go's default controller rate limiter does.
func newLimiter() *rate.Limiter { return rate.NewLimiter(rate.Limit(10), 100) }
