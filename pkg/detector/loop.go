package detector

import (
	"context"
	"time"

	"k8s.io/utils/clock"
)

// poke wakes the loop that waits on wake without blocking: a wake-up
// already pending (wake has a buffer of one) covers this one.
func poke(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

// runLoop is the loop of the agent and of the reporter: it calls sync, then
// waits for wake or for the delay sync returned (0: wake only), until ctx
// ends. One timer serves heartbeats, retries and backoff.
func runLoop(ctx context.Context, clk clock.Clock, wake <-chan struct{}, sync func(context.Context) time.Duration) {
	timer := clk.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := sync(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C():
			default:
			}
		}
		if next > 0 {
			timer.Reset(next)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C():
		}
	}
}
