package app

import (
	"context"

	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller"
	"github.com/nodereboot/nodereboot/pkg/controller/options"
	"github.com/nodereboot/nodereboot/pkg/serving"
	"github.com/nodereboot/nodereboot/pkg/version"
)

// ErrLeadershipLost is returned by Run when this replica stopped leading
// while it was meant to go on.
var ErrLeadershipLost = errors.New("leadership lost")

// healthzTimeout is how late a lease renewal may be before /healthz fails.
const healthzTimeout = 20 * time.Second

// RESTConfig loads the kubeconfig (empty: in-cluster) and sets the user
// agent and the client-side rate limits (--kube-api-qps, --kube-api-burst).
func RESTConfig(o *options.Config) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = version.UserAgent(contract.ControllerComponent)
	cfg.QPS = o.QPS
	cfg.Burst = o.Burst
	return cfg, nil
}

// process is the controller process's wiring: its clients, metrics, events
// and notifications, and the controller of the current leadership.
type process struct {
	o       *options.Config
	cfg     controller.Config
	client  kubernetes.Interface
	metrics *controller.Metrics
	servers *serving.Group
	// recorder records events through a client of its own.
	recorder record.EventRecorder
	// id names this replica on the Lease and on the slot record.
	id string
	// adaptor is the lease renewal's /healthz check (with leader
	// election).
	adaptor *leaderelection.HealthzAdaptor
	// stops are run in reverse order when Run returns.
	stops []func()

	ctrl     atomic.Pointer[controller.Controller]
	leading  atomic.Bool
	electing atomic.Bool
}

// Run runs the controller process until ctx is cancelled (nil) or
// leadership is lost (ErrLeadershipLost), or a server fails.
func Run(ctx context.Context, o *options.Config) error {
	p := &process{o: o, cfg: o.Controller}
	defer p.stop()
	if err := p.wire(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err := p.serve(ctx, cancel); err != nil {
		return err
	}
	if !o.LeaderElection.LeaderElect {
		return p.runAlone(ctx)
	}
	return p.runElected(ctx)
}

// stop runs the stops, last first.
func (p *process) stop() {
	for i := len(p.stops) - 1; i >= 0; i-- {
		p.stops[i]()
	}
}

// wire makes the clients, the metrics, the event recorder and the
// notifier, and the replica's identity.
func (p *process) wire(ctx context.Context) error {
	restCfg, err := RESTConfig(p.o)
	if err != nil {
		return err
	}
	if p.client, err = kubernetes.NewForConfig(restCfg); err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	// Events go through a client of their own, with its own rate limiter,
	// so that a burst of events never delays a node write.
	eventClient, err := kubernetes.NewForConfig(rest.CopyConfig(restCfg))
	if err != nil {
		return fmt.Errorf("create event client: %w", err)
	}
	reg := serving.NewRegistry(contract.ControllerComponent)
	p.metrics = controller.NewMetrics(reg)
	p.servers = p.newServers(reg)

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(3)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: eventClient.CoreV1().Events("")})
	p.stops = append(p.stops, broadcaster.Shutdown)
	p.recorder = controller.CleanRecorder(broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: contract.ControllerComponent}))

	p.startNotifier(ctx)
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	p.id = host + "_" + string(uuid.NewUUID())
	p.cfg.Identity = p.id
	return nil
}

// startNotifier runs the notification sender, if any, until Run returns
// (it outlives ctx so that the last notifications are sent).
func (p *process) startNotifier(ctx context.Context) {
	sender := p.o.Notifier
	if sender == nil {
		return
	}
	sender.OnResult(func(r string) { p.metrics.Notifications.WithLabelValues(r).Inc() })
	p.cfg.Notifier = sender
	nctx, stopNotify := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); sender.Run(klog.NewContext(nctx, klog.FromContext(ctx))) }()
	p.stops = append(p.stops, func() { stopNotify(); <-done })
}

// newServers are the metrics and probe servers (serving.NewGroup's rule):
// /healthz is the process and, with leader election, the lease renewal;
// /readyz is ready.
func (p *process) newServers(reg *prometheus.Registry) *serving.Group {
	opts := []serving.Option{serving.WithHealthz("ping", serving.Ping), serving.WithReadyz("controller", p.ready)}
	if p.o.LeaderElection.LeaderElect {
		p.adaptor = leaderelection.NewLeaderHealthzAdaptor(healthzTimeout)
		opts = append(opts, serving.WithHealthz(p.adaptor.Name(), p.adaptor.Check))
	}
	return serving.NewGroup(p.o.MetricsBindAddress, p.o.HealthProbeBindAddress, reg, opts...)
}

// serve binds the servers and runs them until Run returns (they answer
// probes while the controller stops); a server failure cancels ctx with its
// error.
func (p *process) serve(ctx context.Context, cancel context.CancelCauseFunc) error {
	if err := p.servers.Listen(); err != nil {
		return err
	}
	sctx, stopServers := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.servers.Run(sctx); err != nil {
			cancel(err)
		}
	}()
	p.stops = append(p.stops, func() { stopServers(); <-done })
	return nil
}

// ready is /readyz: a leader whose caches have synced, or a replica
// taking part in the election.
func (p *process) ready(*http.Request) error {
	if p.leading.Load() {
		if c := p.ctrl.Load(); c == nil || !c.HasSynced() {
			return errors.New("leader: caches not synced")
		}
		return nil
	}
	if !p.electing.Load() {
		return errors.New("leader election not running")
	}
	return nil
}

// runController runs a controller until ctx ends.
func (p *process) runController(ctx context.Context) error {
	var clk clock.WithTicker = clock.RealClock{}
	if p.o.TestingClockOffset != 0 {
		clk = offsetClock{offset: p.o.TestingClockOffset}
	}
	c := controller.New(p.client, p.recorder, clk, p.cfg, p.metrics)
	p.ctrl.Store(c)
	return c.Run(ctx, p.o.Workers)
}

// runAlone runs the controller without leader election.
func (p *process) runAlone(ctx context.Context) error {
	klog.FromContext(ctx).Info("Leader election disabled: running as the only controller")
	p.leading.Store(true)
	p.metrics.IsLeader.Set(1)
	err := p.runController(ctx)
	p.metrics.IsLeader.Set(0)
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	return err
}

// offsetClock is the real clock shifted by offset (--testing-clock-offset):
// a controller whose clock is ahead of (or behind) the nodes'. Timers and
// tickers count real durations.
type offsetClock struct {
	clock.RealClock
	offset time.Duration
}

// Now is the shifted time.
func (c offsetClock) Now() time.Time { return time.Now().Add(c.offset) }

// Since is the time elapsed since t on the shifted clock.
func (c offsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
