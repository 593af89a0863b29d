package serving

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestChecksAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)

	var ready atomic.Bool
	s := New("127.0.0.1:0", reg,
		WithHealthz("ping", Ping),
		WithReadyz("synced", func(*http.Request) error {
			if !ready.Load() {
				return errors.New("informer not synced")
			}
			return nil
		}),
		WithReadyz("always", Ping),
	)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	for _, tc := range []struct {
		name     string
		path     string
		ready    bool
		wantCode int
		want     []string
		notWant  []string
	}{
		{name: "healthz", path: "/healthz", wantCode: 200, want: []string{"ok"}},
		{name: "single healthz", path: "/healthz/ping", wantCode: 200, want: []string{"ok"}},
		{name: "readyz failing", path: "/readyz", wantCode: 500,
			want: []string{"[-]synced failed: informer not synced", "readyz check failed"}, notWant: []string{"[+]always"}},
		{name: "readyz failing verbose", path: "/readyz?verbose", wantCode: 500,
			want: []string{"[-]synced failed: informer not synced", "[+]always ok"}},
		{name: "single readyz passing while another fails", path: "/readyz/always", wantCode: 200, want: []string{"ok"}},
		{name: "readyz passing", path: "/readyz", ready: true, wantCode: 200, want: []string{"ok"}},
		{name: "readyz passing verbose", path: "/readyz?verbose", ready: true, wantCode: 200,
			want: []string{"[+]always ok", "[+]synced ok", "readyz check passed"}},
		{name: "metrics", path: "/metrics", wantCode: 200, want: []string{"test_things_total 3"}},
		{name: "unknown path", path: "/nope", wantCode: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready.Store(tc.ready)
			code, body := get(t, ts.URL+tc.path)
			if code != tc.wantCode {
				t.Errorf("status %d, want %d; body %q", code, tc.wantCode, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body %q does not contain %q", body, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("body %q contains %q", body, w)
				}
			}
		})
	}
}

func TestNoMetricsWithoutRegistry(t *testing.T) {
	ts := httptest.NewServer(New(":0", nil).Handler())
	defer ts.Close()
	if code, _ := get(t, ts.URL+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("/metrics without a registry: status %d, want 404", code)
	}
	if code, body := get(t, ts.URL+"/readyz"); code != 200 || body != "ok" {
		t.Fatalf("/readyz with no checks: %d %q, want 200 ok", code, body)
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	s := New("127.0.0.1:0", prometheus.NewRegistry(), WithHealthz("ping", Ping))
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr() = %q after Listen, want the bound port", addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || body != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("server still answers after Run returned")
	}
}

func TestListenError(t *testing.T) {
	a := New("127.0.0.1:0", nil)
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.Run(ctx) }()
	b := New(a.Addr(), nil)
	if err := b.Run(ctx); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("Run on a taken port: %v, want a listen error", err)
	}
}

func TestDisabled(t *testing.T) {
	for _, addr := range []string{"", "0"} {
		s := New(addr, prometheus.NewRegistry())
		if s.Enabled() {
			t.Errorf("New(%q).Enabled() = true", addr)
		}
		if err := s.Listen(); err != nil || s.Addr() != "" {
			t.Errorf("disabled Listen: %v, Addr %q", err, s.Addr())
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		select {
		case err := <-done:
			t.Fatalf("disabled Run returned before cancel: %v", err)
		default:
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("disabled Run: %v", err)
		}
	}
}

func TestValidateAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"", true}, {"0", true}, {":8080", true}, {"127.0.0.1:0", true}, {"[::1]:9000", true},
		{"8080", false}, {"localhost", false}, {":http-alt-nope", false}, {":99999", false},
	} {
		if err := ValidateAddress(tc.addr); (err == nil) != tc.ok {
			t.Errorf("ValidateAddress(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}
