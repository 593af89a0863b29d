package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
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
	cfg.UserAgent = contract.ControllerComponent + "/" + version.Version
	cfg.QPS = o.QPS
	cfg.Burst = o.Burst
	return cfg, nil
}

// Run runs the controller process until ctx is cancelled (nil) or
// leadership is lost (ErrLeadershipLost), or a server fails.
func Run(ctx context.Context, o *options.Config) error {
	logger := klog.FromContext(ctx)
	cfg := o.Controller
	restCfg, err := RESTConfig(o)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	// Events go through a client of their own, with its own rate limiter,
	// so that a burst of events never delays a node write.
	eventClient, err := kubernetes.NewForConfig(rest.CopyConfig(restCfg))
	if err != nil {
		return fmt.Errorf("create event client: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := controller.NewMetrics(reg)

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(3)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: eventClient.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := controller.CleanRecorder(broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: contract.ControllerComponent}))

	if sender := o.Notifier; sender != nil {
		sender.OnResult(func(r string) { metrics.Notifications.WithLabelValues(r).Inc() })
		cfg.Notifier = sender
		nctx, stopNotify := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); sender.Run(klog.NewContext(nctx, logger)) }()
		defer func() { stopNotify(); <-done }()
	}

	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	// The identity names this replica on the Lease and on the slot record.
	id := host + "_" + string(uuid.NewUUID())
	cfg.Identity = id

	var (
		ctrl     atomic.Pointer[controller.Controller]
		leading  atomic.Bool
		electing atomic.Bool
	)
	runController := func(ctx context.Context) error {
		var clk clock.WithTicker = clock.RealClock{}
		if o.TestingClockOffset != 0 {
			clk = offsetClock{offset: o.TestingClockOffset}
		}
		c := controller.New(client, recorder, clk, cfg, metrics)
		ctrl.Store(c)
		return c.Run(ctx, o.Workers)
	}
	ready := func(*http.Request) error {
		if leading.Load() {
			if c := ctrl.Load(); c == nil || !c.HasSynced() {
				return errors.New("leader: caches not synced")
			}
			return nil
		}
		if !electing.Load() {
			return errors.New("leader election not running")
		}
		return nil
	}
	var adaptor *leaderelection.HealthzAdaptor
	healthOpts := []serving.Option{serving.WithHealthz("ping", serving.Ping), serving.WithReadyz("controller", ready)}
	if o.LeaderElection.LeaderElect {
		adaptor = leaderelection.NewLeaderHealthzAdaptor(healthzTimeout)
		healthOpts = append(healthOpts, serving.WithHealthz(adaptor.Name(), adaptor.Check))
	}
	var servers []*serving.Server
	if o.MetricsBindAddress == o.HealthProbeBindAddress {
		servers = append(servers, serving.New(o.MetricsBindAddress, reg, healthOpts...))
	} else {
		servers = append(servers, serving.New(o.MetricsBindAddress, reg), serving.New(o.HealthProbeBindAddress, nil, healthOpts...))
	}
	for _, s := range servers {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	sctx, stopServers := context.WithCancelCause(context.WithoutCancel(ctx))
	var swg sync.WaitGroup
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for _, s := range servers {
		swg.Go(func() {
			if err := s.Run(sctx); err != nil {
				cancel(err)
			}
		})
	}
	defer swg.Wait()
	defer stopServers(nil)

	if !o.LeaderElection.LeaderElect {
		logger.Info("Leader election disabled: running as the only controller")
		leading.Store(true)
		metrics.IsLeader.Set(1)
		err := runController(ctx)
		metrics.IsLeader.Set(0)
		if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		return err
	}

	le := o.LeaderElection
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: le.ResourceNamespace, Name: le.ResourceName},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}

	// The elector runs under its own context, cancelled only after the
	// work has stopped: the lease is released (ReleaseOnCancel) when no
	// worker can write any more, so that the next leader never overlaps.
	electorCtx, stopElector := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElector()
	var (
		startOnce sync.Once
		workDone  = make(chan struct{})
		started   atomic.Bool
		workErr   error
	)
	go func() {
		<-ctx.Done()
		if started.Load() {
			<-workDone
		}
		stopElector()
	}()

	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   le.LeaseDuration.Duration,
		RenewDeadline:   le.RenewDeadline.Duration,
		RetryPeriod:     le.RetryPeriod.Duration,
		ReleaseOnCancel: true,
		Name:            contract.ControllerComponent,
		WatchDog:        adaptor,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				startOnce.Do(func() {
					started.Store(true)
					defer close(workDone)
					logger.Info("Started leading", "identity", id)
					leading.Store(true)
					metrics.IsLeader.Set(1)
					// Work stops when leadership is lost (lctx) or
					// the process is asked to stop (ctx).
					wctx, wcancel := context.WithCancel(lctx)
					defer wcancel()
					stop := context.AfterFunc(ctx, wcancel)
					defer stop()
					workErr = runController(wctx)
				})
			},
			OnStoppedLeading: func() {
				if started.Load() {
					<-workDone // all workers have returned
				}
				leading.Store(false)
				metrics.IsLeader.Set(0)
				logger.Info("Stopped leading", "identity", id)
			},
			OnNewLeader: func(identity string) {
				if identity != id {
					logger.Info("New leader", "identity", identity)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	logger.Info("Waiting for leadership", "lease", klog.KRef(le.ResourceNamespace, le.ResourceName), "identity", id)
	electing.Store(true)
	elector.Run(electorCtx)
	electing.Store(false)

	if cause := context.Cause(ctx); cause != nil {
		if !errors.Is(cause, context.Canceled) {
			return cause // a server failed
		}
		return nil // asked to stop
	}
	if workErr != nil {
		return fmt.Errorf("%w: %v", ErrLeadershipLost, workErr)
	}
	return ErrLeadershipLost
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
