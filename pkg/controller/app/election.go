package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// leadership is one replica's part in the election: the controller runs
// while it leads, at most once per process.
type leadership struct {
	p *process
	// ctx is the process's: work stops when it ends, too.
	ctx       context.Context
	startOnce sync.Once
	started   atomic.Bool
	workDone  chan struct{}
	workErr   error
}

// runElected runs the controller while this replica leads the Lease.
func (p *process) runElected(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	le := p.o.LeaderElection
	l := &leadership{p: p, ctx: ctx, workDone: make(chan struct{})}
	// The elector runs under its own context, cancelled only after the
	// work has stopped: the lease is released (ReleaseOnCancel) when no
	// worker can write any more, so that the next leader never overlaps.
	electorCtx, stopElector := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElector()
	go func() {
		<-ctx.Done()
		if l.started.Load() {
			<-l.workDone
		}
		stopElector()
	}()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: le.ResourceNamespace, Name: le.ResourceName},
			Client:     p.client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: p.id},
		},
		LeaseDuration:   le.LeaseDuration.Duration,
		RenewDeadline:   le.RenewDeadline.Duration,
		RetryPeriod:     le.RetryPeriod.Duration,
		ReleaseOnCancel: true,
		Name:            contract.ControllerComponent,
		WatchDog:        p.adaptor,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: l.onStartedLeading,
			OnStoppedLeading: l.onStoppedLeading,
			OnNewLeader:      l.onNewLeader,
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	logger.Info("Waiting for leadership", "lease", klog.KRef(le.ResourceNamespace, le.ResourceName), "identity", p.id)
	p.electing.Store(true)
	elector.Run(electorCtx)
	p.electing.Store(false)
	return l.result()
}

// onStartedLeading runs the controller until leadership is lost (lctx) or
// the process is asked to stop.
func (l *leadership) onStartedLeading(lctx context.Context) {
	l.startOnce.Do(func() {
		l.started.Store(true)
		defer close(l.workDone)
		// Leading before the log line says so: whoever reads the line and
		// then asks /readyz gets the leader's answer.
		l.p.leading.Store(true)
		klog.FromContext(l.ctx).Info("Started leading", "identity", l.p.id)
		l.p.metrics.IsLeader.Set(1)
		wctx, wcancel := context.WithCancel(lctx)
		defer wcancel()
		stop := context.AfterFunc(l.ctx, wcancel)
		defer stop()
		l.workErr = l.p.runController(wctx)
	})
}

// onStoppedLeading waits for every worker to return.
func (l *leadership) onStoppedLeading() {
	if l.started.Load() {
		<-l.workDone
	}
	l.p.leading.Store(false)
	l.p.metrics.IsLeader.Set(0)
	klog.FromContext(l.ctx).Info("Stopped leading", "identity", l.p.id)
}

func (l *leadership) onNewLeader(identity string) {
	if identity != l.p.id {
		klog.FromContext(l.ctx).Info("New leader", "identity", identity)
	}
}

// result is Run's error once the elector has returned: nil when asked to
// stop, a server's failure, or ErrLeadershipLost.
func (l *leadership) result() error {
	if cause := context.Cause(l.ctx); cause != nil {
		if !errors.Is(cause, context.Canceled) {
			return cause // a server failed
		}
		return nil // asked to stop
	}
	if l.workErr != nil {
		return fmt.Errorf("%w: %v", ErrLeadershipLost, l.workErr)
	}
	return ErrLeadershipLost
}
