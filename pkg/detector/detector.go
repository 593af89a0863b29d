package detector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/reboot"
	"github.com/nodereboot/nodereboot/pkg/serving"
)

// Config is everything the detector needs; options.Options builds it from
// the command line.
type Config struct {
	// Client talks to the API server as the detector (kubeclient.New).
	Client Client
	// NodeName is this node.
	NodeName string
	// ConditionType is the type of the node condition written.
	ConditionType string
	// Detection enables the sentinel observation and the condition. Without
	// it the detector only performs authorized reboots (for clusters where
	// node-problem-detector owns the condition).
	Detection bool
	// Source observes the sentinel (required when Detection is on).
	Source Source
	// HeartbeatPeriod is how often an unchanged condition is written again.
	HeartbeatPeriod time.Duration
	// BootIDFile is read once at the start: the current boot ID.
	BootIDFile string
	// Rebooter performs the reboot; nil: the detector only reports (it
	// never reboots and never writes nodereboot.io/rebooting), which needs
	// Detection.
	Rebooter reboot.Rebooter
	// RebootBackoff spaces failed reboot attempts (default 5s doubling to
	// 5m).
	RebootBackoff wait.Backoff
	// WriteBackoff spaces failed writes of the condition and the annotation
	// (default 0.5s doubling to 30s).
	WriteBackoff wait.Backoff
	// MetricsAddress and HealthAddress are the bind addresses of /metrics
	// and of /healthz and /readyz; "" or "0" disables.
	MetricsAddress string
	HealthAddress  string
	// Clock drives heartbeats and backoffs (default the real clock).
	Clock clock.WithTicker
	// Registry receives the metrics (default serving.NewRegistry: with the
	// Go runtime, process and build_info metrics).
	Registry *prometheus.Registry
	// Recorder records events (default: a broadcaster writing to the
	// events API through Client, flushed on exit).
	Recorder record.EventRecorder
}

// DefaultRebootBackoff spaces failed reboot attempts: 5s, 10s, 20s... 5m.
var DefaultRebootBackoff = wait.Backoff{Duration: 5 * time.Second, Factor: 2, Jitter: 0.1, Steps: 1 << 30, Cap: 5 * time.Minute}

// Detector is a running detector; create it with New.
type Detector struct {
	cfg      Config
	bootID   string
	registry *prometheus.Registry
	metrics  *metrics

	mu       sync.Mutex
	synced   bool
	reporter *reporter
	// agentSynced, when set before Run, is called with the node after
	// each sync of the agent (tests wait on what the agent saw).
	agentSynced func(*v1.Node)
	servers     *serving.Group
}

// New checks cfg, reads the boot ID and returns a detector ready to Run.
func New(cfg Config) (*Detector, error) {
	if cfg.Client == nil || cfg.NodeName == "" || cfg.BootIDFile == "" {
		return nil, errors.New("detector: Client, NodeName and BootIDFile are required")
	}
	if cfg.Rebooter == nil && !cfg.Detection {
		return nil, errors.New("detector: without a Rebooter, Detection is required")
	}
	if cfg.Detection && (cfg.Source == nil || cfg.ConditionType == "" || cfg.HeartbeatPeriod <= 0) {
		return nil, errors.New("detector: detection needs Source, ConditionType and a positive HeartbeatPeriod")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.RebootBackoff.Duration == 0 {
		cfg.RebootBackoff = DefaultRebootBackoff
	}
	if cfg.WriteBackoff.Duration == 0 {
		cfg.WriteBackoff = defaultWriteRetry
	}
	if cfg.Registry == nil {
		cfg.Registry = serving.NewRegistry(contract.DetectorComponent)
	}
	bootID, err := ReadBootID(cfg.BootIDFile)
	if err != nil {
		return nil, err
	}
	d := &Detector{cfg: cfg, bootID: bootID, registry: cfg.Registry}
	d.metrics = newMetrics(cfg.Registry, cfg.Detection)
	d.servers = serving.NewGroup(cfg.MetricsAddress, cfg.HealthAddress, cfg.Registry,
		serving.WithHealthz("ping", serving.Ping),
		serving.WithReadyz("node-informer-synced", d.checkSynced),
		serving.WithReadyz("condition-reported", d.checkReported))
	return d, nil
}

// ReadBootID reads a boot ID file (/proc/sys/kernel/random/boot_id).
func ReadBootID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the boot ID: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("read the boot ID: %s is empty", path)
	}
	return id, nil
}

// BootID is the boot ID read at the start.
func (d *Detector) BootID() string { return d.bootID }

// Registry is the registry of the detector's metrics.
func (d *Detector) Registry() *prometheus.Registry { return d.registry }

// Listen binds the metrics and health servers, so that their addresses are
// known before Run (Run binds them otherwise).
func (d *Detector) Listen() error { return d.servers.Listen() }

// MetricsAddr and HealthAddr are the bound addresses ("" if disabled or not
// bound yet).
func (d *Detector) MetricsAddr() string { return d.servers.MetricsAddr() }

// HealthAddr is the bound address of /healthz and /readyz.
func (d *Detector) HealthAddr() string { return d.servers.HealthAddr() }

func (d *Detector) checkSynced(*http.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.synced {
		return errors.New("the node informer has not synced")
	}
	return nil
}

func (d *Detector) checkReported(*http.Request) error {
	d.mu.Lock()
	r := d.reporter
	d.mu.Unlock()
	if !d.cfg.Detection {
		return nil
	}
	if r == nil || !r.reported.Load() {
		return errors.New("the condition has not been reported yet")
	}
	return nil
}

// Run runs the detector until ctx is cancelled. It returns an error only
// when it cannot start (a server cannot bind); API errors are retried.
func (d *Detector) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("node", d.cfg.NodeName)
	ctx = klog.NewContext(ctx, logger)
	if err := d.Listen(); err != nil {
		return err
	}
	logger.Info("Starting detector", "bootID", d.bootID, "detection", d.cfg.Detection, "reboots", d.cfg.Rebooter != nil,
		"metrics", d.MetricsAddr(), "health", d.HealthAddr())

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var er *eventRecorder
	// Shutdown: stop everything, wait for the loops, then flush the events
	// they recorded (the broadcaster outlives ctx for that).
	defer func() {
		cancel()
		wg.Wait()
		if er != nil {
			er.Stop(3 * time.Second)
		}
	}()
	serverErr := d.runServers(ctx, &wg, cancel)
	recorder := d.cfg.Recorder
	if recorder == nil {
		er = newEventRecorder(ctx, d.cfg.Client, d.cfg.NodeName)
		recorder = er
	}
	informer := d.nodeInformer()
	a, r, probeNow := d.loops(corelisters.NewNodeLister(informer.GetIndexer()), recorder)
	if err := onNodeChange(informer, a, r); err != nil {
		return err
	}
	wg.Go(func() { informer.RunWithContext(ctx) })

	// Observing may start at once: the reporter uses the observations once
	// the cache has synced, so a restarted detector keeps the transition
	// time of the condition on the node.
	if r != nil {
		wg.Go(func() {
			if err := d.cfg.Source.Run(ctx, probeNow, r.observe); err != nil {
				logger.Error(err, "Sentinel observation stopped")
			}
		})
	}
	if cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		d.setSynced()
		logger.Info("Node informer synced")
		if d.cfg.Rebooter != nil {
			wg.Go(func() { a.run(ctx) })
		}
		if r != nil {
			wg.Go(func() { r.run(ctx) })
		}
	}
	<-ctx.Done()
	return d.exit(ctx, serverErr)
}

// runServers runs the metrics and health servers under wg; a failure
// cancels the detector and is sent on the returned channel.
func (d *Detector) runServers(ctx context.Context, wg *sync.WaitGroup, cancel context.CancelFunc) chan error {
	serverErr := make(chan error, 1)
	wg.Go(func() {
		if err := d.servers.Run(ctx); err != nil {
			serverErr <- err
			cancel()
		}
	})
	return serverErr
}

// nodeInformer is the detector's one informer, on this node only.
func (d *Detector) nodeInformer() cache.SharedIndexInformer {
	return cache.NewSharedIndexInformer(
		d.cfg.Client.NodeListWatch(fields.OneTermEqualSelector("metadata.name", d.cfg.NodeName).String()),
		&v1.Node{}, 0, cache.Indexers{})
}

// loops builds the agent (authorized reboots) and, with detection, the
// reporter (the condition) and the channel on which the agent asks for a
// fresh observation of the sentinel.
func (d *Detector) loops(lister corelisters.NodeLister, recorder record.EventRecorder) (*agent, *reporter, chan struct{}) {
	probeNow := make(chan struct{}, 1)
	a := &agent{
		client: d.cfg.Client, lister: lister, nodeName: d.cfg.NodeName, bootID: d.bootID,
		rebooter: d.cfg.Rebooter, recorder: recorder, metrics: d.metrics, clock: d.cfg.Clock,
		rebootBackoff: d.cfg.RebootBackoff, writeRetry: d.cfg.WriteBackoff,
		wake: make(chan struct{}, 1), synced: d.agentSynced,
	}
	if !d.cfg.Detection {
		return a, nil, probeNow
	}
	r := &reporter{
		client: d.cfg.Client, lister: lister, nodeName: d.cfg.NodeName, bootID: d.bootID, condType: d.cfg.ConditionType,
		heartbeat: d.cfg.HeartbeatPeriod, clock: d.cfg.Clock, recorder: recorder, metrics: d.metrics,
		retry: d.cfg.WriteBackoff, wake: make(chan struct{}, 1),
	}
	a.probeNow = func() { poke(probeNow) }
	d.mu.Lock()
	d.reporter = r
	d.mu.Unlock()
	return a, r, probeNow
}

// onNodeChange wakes the agent and the reporter (if any) on every change of
// the node.
func onNodeChange(informer cache.SharedIndexInformer, a *agent, r *reporter) error {
	onChange := func() {
		a.poke()
		if r != nil {
			r.poke()
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { onChange() },
		UpdateFunc: func(any, any) { onChange() },
		DeleteFunc: func(any) { onChange() },
	}); err != nil {
		return fmt.Errorf("node informer: %w", err)
	}
	return nil
}

func (d *Detector) setSynced() {
	d.mu.Lock()
	d.synced = true
	d.mu.Unlock()
}

func (d *Detector) exit(ctx context.Context, serverErr chan error) error {
	select {
	case err := <-serverErr:
		return err
	default:
	}
	klog.FromContext(ctx).Info("Stopping detector")
	return nil
}

// Client is what the detector asks of the API server: its own Node (listed
// and watched by field selector, patched) and Events. kubeclient.Client
// implements it for the binary; fromclientset adapts a clientset for tests.
type Client interface {
	// NodeListWatch lists and watches the nodes fieldSelector selects.
	NodeListWatch(fieldSelector string) cache.ListerWatcher
	// PatchNode patches a node or one of its subresources.
	PatchNode(ctx context.Context, name string, pt types.PatchType, data []byte, subresources ...string) (*v1.Node, error)
	// EventSink writes events (with ctx) for an event broadcaster.
	EventSink(ctx context.Context) record.EventSink
	// Scheme knows the core/v1 types, for the event recorder.
	Scheme() *runtime.Scheme
}
