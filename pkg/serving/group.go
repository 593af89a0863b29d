package serving

import (
	"context"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Group is a binary's servers, the same rule for both binaries: /metrics on
// the metrics address, /healthz and /readyz on the health address, or all
// three on one server when the two addresses are the same
// (docs/controller.md#serving). "" or "0" disables an address.
type Group struct {
	metrics, health *Server
	servers         []*Server
}

// NewGroup returns the servers of reg's metrics and of the health and
// readiness checks in healthOpts.
func NewGroup(metricsAddr, healthAddr string, reg *prometheus.Registry, healthOpts ...Option) *Group {
	if metricsAddr == healthAddr {
		s := New(metricsAddr, reg, healthOpts...)
		return &Group{metrics: s, health: s, servers: []*Server{s}}
	}
	m, h := New(metricsAddr, reg), New(healthAddr, nil, healthOpts...)
	return &Group{metrics: m, health: h, servers: []*Server{m, h}}
}

// Listen binds the addresses, so that they are known before Run (Run binds
// them otherwise).
func (g *Group) Listen() error {
	if err := g.metrics.Listen(); err != nil {
		return fmt.Errorf("metrics server: %w", err)
	}
	if err := g.health.Listen(); err != nil {
		return fmt.Errorf("health probe server: %w", err)
	}
	return nil
}

// MetricsAddr is the bound address of /metrics ("" if disabled or not bound
// yet).
func (g *Group) MetricsAddr() string { return g.metrics.Addr() }

// HealthAddr is the bound address of /healthz and /readyz.
func (g *Group) HealthAddr() string { return g.health.Addr() }

// Run serves until ctx is cancelled, then shuts every server down
// gracefully. When one server fails the others are shut down and its error
// returned.
func (g *Group) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(g.servers))
	var wg sync.WaitGroup
	for _, s := range g.servers {
		wg.Go(func() {
			if err := s.Run(ctx); err != nil {
				errc <- err
				cancel()
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
