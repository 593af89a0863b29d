package serving

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

func status(t *testing.T, addr, path string) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// freeAddr is an address nothing listens on, to be bound twice by name.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// The same address for metrics and probes: one server serves all three
// paths; different addresses: each server its own.
func TestGroupAddresses(t *testing.T) {
	same := freeAddr(t)
	for name, tc := range map[string]struct{ metrics, health string }{
		"same":      {same, same},
		"different": {"127.0.0.1:0", "localhost:0"},
	} {
		g := NewGroup(tc.metrics, tc.health, NewRegistry("test"), WithReadyz("ok", Ping))
		if err := g.Listen(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		m, h := g.MetricsAddr(), g.HealthAddr()
		if (m == h) != (name == "same") {
			t.Errorf("%s: metrics on %s, health on %s", name, m, h)
		}
		if status(t, m, MetricsPath) != 200 || status(t, h, ReadyzPath) != 200 || status(t, h, HealthzPath) != 200 {
			t.Errorf("%s: a path is not served", name)
		}
		if name == "different" && status(t, h, MetricsPath) != 404 {
			t.Errorf("the health server serves /metrics")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
	}
}

// A server that cannot bind fails the group's Run, which stops the other.
func TestGroupFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := NewGroup("127.0.0.1:0", l.Addr().String(), NewRegistry("test"))
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned nil with an address in use")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after a server failed")
	}
}
