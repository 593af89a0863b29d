package serving

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// Paths served.
const (
	MetricsPath = "/metrics"
	HealthzPath = "/healthz"
	ReadyzPath  = "/readyz"
)

// Timeouts of the underlying http.Server. They are generous for a scrape of a
// few hundred series and short enough that a stuck client cannot hold a
// connection forever.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 90 * time.Second
	// DefaultShutdownTimeout bounds the graceful shutdown in Run.
	DefaultShutdownTimeout = 5 * time.Second
)

// CheckFunc is a health or readiness check: nil means healthy. The request is
// the probe's, so a check may honour its context.
type CheckFunc func(*http.Request) error

// Ping is a health check that always passes: the server answers, so the
// process is alive.
func Ping(*http.Request) error { return nil }

type check struct {
	name string
	fn   CheckFunc
}

// Option configures a Server.
type Option func(*Server)

// WithHealthz adds a named check to /healthz (and serves it alone at
// /healthz/<name>).
func WithHealthz(name string, fn CheckFunc) Option {
	return func(s *Server) { s.healthz = append(s.healthz, check{name, fn}) }
}

// WithReadyz adds a named check to /readyz (and serves it alone at
// /readyz/<name>).
func WithReadyz(name string, fn CheckFunc) Option {
	return func(s *Server) { s.readyz = append(s.readyz, check{name, fn}) }
}

// WithShutdownTimeout sets how long Run waits for in-flight requests after
// its context is cancelled (default DefaultShutdownTimeout).
func WithShutdownTimeout(d time.Duration) Option {
	return func(s *Server) { s.shutdownTimeout = d }
}

// Server serves /metrics, /healthz and /readyz on one address. Create it with
// New; it is started by Run (or Listen, then Run).
type Server struct {
	addr            string
	registry        *prometheus.Registry
	healthz         []check
	readyz          []check
	shutdownTimeout time.Duration

	mu       sync.Mutex
	listener net.Listener
	srv      *http.Server
}

// Disabled reports whether addr switches a server off: "" and "0" do.
func Disabled(addr string) bool { return addr == "" || addr == "0" }

// ValidateAddress checks a bind address flag value: "", "0", or host:port
// (host may be empty, port may be 0).
func ValidateAddress(addr string) error {
	if Disabled(addr) {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid bind address %q: want [host]:port, or 0 to disable: %v", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("invalid port in bind address %q: %v", addr, err)
	}
	return nil
}

// New returns a server for addr. With a nil registry it serves no /metrics;
// /healthz and /readyz are always served (an empty list passes). An addr that
// is "" or "0" gives a disabled server whose Run only waits for its context.
func New(addr string, reg *prometheus.Registry, opts ...Option) *Server {
	s := &Server{addr: addr, registry: reg, shutdownTimeout: DefaultShutdownTimeout}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Enabled reports whether the server listens at all.
func (s *Server) Enabled() bool { return !Disabled(s.addr) }

// Handler returns the server's HTTP handler (useful with httptest).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	if s.registry != nil {
		mux.Handle(MetricsPath, promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
			Registry:          s.registry, // promhttp_metric_handler_errors_total
			ErrorHandling:     promhttp.ContinueOnError,
			EnableOpenMetrics: true,
		}))
	}
	installChecks(mux, HealthzPath, s.healthz)
	installChecks(mux, ReadyzPath, s.readyz)
	return mux
}

// Listen binds the address without serving yet, so that Addr is known (for
// ":0" in tests) before Run. Run calls it when it has not been called. It is
// a no-op for a disabled server.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.Enabled() || s.listener != nil {
		return nil
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	s.listener = l
	return nil
}

// Addr is the bound address (host:port) once Listen or Run has bound it, and
// "" before or when disabled.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Run serves until ctx is cancelled, then shuts down gracefully within the
// shutdown timeout. It returns nil after a clean shutdown and an error when
// the address cannot be bound or serving fails. A disabled server returns nil
// when ctx is cancelled.
func (s *Server) Run(ctx context.Context) error {
	if !s.Enabled() {
		<-ctx.Done()
		return nil
	}
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	l := s.listener
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv := s.srv
	s.mu.Unlock()

	klog.FromContext(ctx).Info("Serving", "address", l.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down server on %s: %w", l.Addr(), err)
	}
	return nil
}

// installChecks serves all checks at path and each one at path/<name>, in the
// format of the Kubernetes API server: "ok", or one "[-]name failed: reason"
// line per failure with status 500; "?verbose" lists passing checks too.
func installChecks(mux *http.ServeMux, path string, checks []check) {
	sorted := append([]check(nil), checks...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		writeChecks(w, r, path, sorted)
	})
	for _, c := range sorted {
		mux.HandleFunc(path+"/"+c.name, func(w http.ResponseWriter, r *http.Request) {
			writeChecks(w, r, path, []check{c})
		})
	}
}

func writeChecks(w http.ResponseWriter, r *http.Request, path string, checks []check) {
	var b strings.Builder
	failed := false
	_, verbose := r.URL.Query()["verbose"]
	for _, c := range checks {
		if err := c.fn(r); err != nil {
			failed = true
			fmt.Fprintf(&b, "[-]%s failed: %v\n", c.name, err)
		} else if verbose {
			fmt.Fprintf(&b, "[+]%s ok\n", c.name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if failed {
		fmt.Fprintf(&b, "%s check failed\n", strings.TrimPrefix(path, "/"))
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(b.String()))
		return
	}
	if verbose {
		fmt.Fprintf(&b, "%s check passed\n", strings.TrimPrefix(path, "/"))
		_, _ = w.Write([]byte(b.String()))
		return
	}
	_, _ = w.Write([]byte("ok"))
}
