package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	"k8s.io/utils/keymutex"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/controller/slots"
	"github.com/nodereboot/nodereboot/pkg/drain"
	"github.com/nodereboot/nodereboot/pkg/gates"
	"github.com/nodereboot/nodereboot/pkg/notify"
)

// admissionKey is the one key of the admission queue.
const admissionKey = "admission"

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
	// WitnessGrace is how long a reboot seen by boot ID and the kubelet's
	// Rebooted event wait for each other (witness.go); default
	// DefaultWitnessGrace.
	WitnessGrace time.Duration
}

// Controller reboots nodes one slot at a time. Create it with New and start
// it with Run.
type Controller struct {
	client  kubernetes.Interface
	factory informers.SharedInformerFactory
	nodes   corelisters.NodeLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	// admission is the admission pass's own queue, worked by one
	// goroutine of its own (runAdmission): a pass (gates, a Prometheus
	// query) never holds a node worker, and its retries never share a
	// node's backoff. Its one key coalesces every request for a pass.
	admission workqueue.TypedRateLimitingInterface[string]
	recorder  record.EventRecorder
	clock     clock.WithTicker
	cfg       Config
	metrics   *Metrics
	drainer   *drain.Drainer
	pods      *drain.PodWatches
	witness   *witness
	ready     atomic.Bool
	// slots is the slot record: the nodes this controller put out, and
	// the leader term that fences a deposed leader's writes.
	slots *slots.Record
	// stop ends Run when the slot record shows a newer leader.
	stop context.CancelCauseFunc

	// own is what the cache does not show yet of this controller's own
	// writes (ownwrites.go): the takes that may still land, the version
	// each take was decided on while its slot is held, and the last write
	// per node. It decides safety: admission counts the takes in flight
	// as out, and only a version past a node's take gives its slot back.
	own *ownWrites
	// takes serializes, per node, a take (from the version it remembers
	// to the patch's answer) and a reconciler's decision to give the
	// node's slot back (releaseIfOut), so that a release decided on what
	// was seen before a take can never remove that take's slot.
	takes keymutex.KeyMutex

	// mu guards what follows: what was announced and the gates' answers,
	// which only silence repeated events and spare requests.
	mu sync.Mutex
	// queued are the nodes announced with RebootQueued.
	queued map[string]bool
	// warned is the last warning announced per node while it waits.
	warned map[string]string
	// blocked is the last RebootBlocked message announced.
	blocked string
	// dryRun is the last decision announced per node in dry-run mode.
	dryRun map[string]string
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
		client:       client,
		factory:      factory,
		nodes:        nodeInformer.Lister(),
		synced:       []cache.InformerSynced{nodeInformer.Informer().HasSynced, pdbInformer.Informer().HasSynced},
		recorder:     recorder,
		clock:        clk,
		cfg:          cfg,
		metrics:      metrics,
		queue:        newQueue(clk, "nodereboot", outFirst(nodeInformer.Lister())),
		admission:    newQueue(clk, "nodereboot-admission", nil),
		own:          newOwnWrites(),
		takes:        keymutex.NewHashed(32),
		queued:       map[string]bool{},
		warned:       map[string]string{},
		dryRun:       map[string]string{},
		podBlocks:    map[string]decide.Block{},
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
		c.pause = gates.NewPauseWatch(client, cfg.PauseNamespace, func() { c.admission.Add(admissionKey) })
		c.synced = append(c.synced, c.pause.HasSynced)
	}
	c.drainer = drain.New(client, pdbInformer.Lister(), recorder, clk, c.drainOptions())
	_, _ = pdbInformer.Informer().AddEventHandler(c.drainer.BudgetHandler(c.queue.Add)) // refused evictions retried when their budget allows
	c.pods = drain.NewPodWatches(client, c.queue.Add)
	c.witness = newWitness(clk, cfg.WitnessGrace, func(kind string) { metrics.WitnessMismatch.WithLabelValues(kind).Inc() })

	_ = nodeInformer.Informer().SetTransform(func(obj any) (any, error) {
		if n, ok := obj.(*v1.Node); ok {
			trimNode(n)
		}
		return obj, nil
	})
	_, _ = nodeInformer.Informer().AddEventHandler(c.nodeHandler())
	return c
}

// drainOptions are the configured drain options, with evictions counted
// in nodereboot_evictions_total before the configured hook is called.
func (c *Controller) drainOptions() drain.Options {
	dopts := c.cfg.Drain
	userHook := dopts.OnEviction
	dopts.OnEviction = func(r string) {
		c.metrics.Evictions.WithLabelValues(r).Inc()
		if userHook != nil {
			userHook(r)
		}
	}
	return dopts
}

// nodeHandler queues a node on each change of it, and the admission pass
// on the changes admission depends on (fingerprint).
func (c *Controller) nodeHandler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if n, ok := obj.(*v1.Node); ok {
				c.queue.Add(n.Name)
				c.admission.Add(admissionKey)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*v1.Node)
			n, ok2 := newObj.(*v1.Node)
			if !ok1 || !ok2 {
				return
			}
			c.own.seen(n)
			c.queue.Add(n.Name)
			if fingerprint(o, &c.cfg.Decide) != fingerprint(n, &c.cfg.Decide) {
				c.admission.Add(admissionKey)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*v1.Node); ok {
				c.queue.Add(n.Name)
				c.admission.Add(admissionKey)
			}
		},
	}
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
	defer c.admission.ShutDown()
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
	c.admission.Add(admissionKey)

	logger.Info("Starting workers", "count", workers)
	var wg sync.WaitGroup
	wg.Go(func() { c.witness.run(ctx, c.client) })
	wg.Go(func() { wait.UntilWithContext(ctx, c.runAdmission, time.Second) })
	for range workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.runWorker, time.Second) })
	}
	<-ctx.Done()
	logger.Info("Stopping workers")
	c.queue.ShutDown()
	c.admission.ShutDown()
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

// runAdmission runs admission passes, one at a time, until its queue is
// shut down.
func (c *Controller) runAdmission(ctx context.Context) {
	for processNext(ctx, c.admission, func(ctx context.Context, _ string) error { return c.admit(ctx) }) {
	}
}

func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	return processNext(ctx, c.queue, c.syncHandler)
}

// processNext takes one key from q and handles it: forgotten on success,
// requeued with q's backoff on an error. It reports false once q is shut
// down or ctx ended.
func processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], handle func(context.Context, string) error) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	if ctx.Err() != nil {
		return false
	}
	if err := handle(ctx, key); err != nil {
		if apierrors.IsConflict(err) {
			klog.FromContext(ctx).V(2).Info("Conflict, retrying", "key", key, "err", err)
		} else {
			utilruntime.HandleErrorWithContext(ctx, err, "Sync failed, requeuing", "key", key)
		}
		q.AddRateLimited(key)
		return true
	}
	q.Forget(key)
	return true
}
