package detector

import (
	"context"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodereboot/nodereboot/pkg/sentinel"
)

// Source produces observations of the sentinel: one at the start, then one
// whenever it may have changed and one for every receive on probeNow. emit
// must not block for long.
type Source interface {
	Run(ctx context.Context, probeNow <-chan struct{}, emit func(sentinel.Observation)) error
}

// FileSource observes a sentinel file: on every inotify event that concerns
// it, every ResyncPeriod (0 disables this fallback) and on request.
type FileSource struct {
	Path         string
	ResyncPeriod time.Duration
	Clock        clock.WithTicker
}

// Run observes until ctx is cancelled.
func (s FileSource) Run(ctx context.Context, probeNow <-chan struct{}, emit func(sentinel.Observation)) error {
	clk := s.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	changed := make(chan struct{}, 1)
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- sentinel.FileWatcher{Path: s.Path}.Run(ctx, func() { poke(changed) })
	}()
	var resync <-chan time.Time
	if s.ResyncPeriod > 0 {
		t := clk.NewTicker(s.ResyncPeriod)
		defer t.Stop()
		resync = t.C()
	}
	probe := sentinel.FileProbe{Path: s.Path}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			if err != nil {
				// Without inotify the resync period is all there is.
				klog.FromContext(ctx).Error(err, "Cannot watch the sentinel; relying on --resync-period", "resyncPeriod", s.ResyncPeriod)
			}
			watchErr = nil
			poke(changed)
		case <-changed:
		case <-resync:
		case <-probeNow:
		}
		emit(probe.Observe())
	}
}

// CommandSource observes by running a command at the start, every Period
// (which is also its timeout) and on request.
type CommandSource struct {
	Argv   []string
	Period time.Duration
	Clock  clock.WithTicker
}

// Run observes until ctx is cancelled.
func (s CommandSource) Run(ctx context.Context, probeNow <-chan struct{}, emit func(sentinel.Observation)) error {
	clk := s.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	t := clk.NewTicker(s.Period)
	defer t.Stop()
	probe := sentinel.CommandProbe{Argv: s.Argv, Timeout: s.Period}
	for {
		obs := probe.Observe(ctx)
		if ctx.Err() != nil {
			return nil
		}
		emit(obs)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		case <-probeNow:
		}
	}
}
