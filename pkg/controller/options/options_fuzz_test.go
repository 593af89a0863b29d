package options

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// FuzzOptions: any command line either fails to parse or validate with a
// message naming a flag, or converts to a configuration whose bounds hold:
// at least one node at a time, positive timeouts, a known drain failure
// policy, budgets of 0 or more with a label key and non-empty selectors.
func FuzzOptions(f *testing.F) {
	for _, args := range []string{
		"",
		"--max-concurrent=3 --drain-timeout=5m --on-drain-failure=hold",
		"--max-concurrent=0",
		"--max-concurrent=-1",
		"--on-drain-failure=delete",
		"--node-selector=role=worker,zone!=a",
		"--node-selector=a b c",
		"--reboot-conditions=RebootRequired,KernelDeadlock",
		"--reboot-conditions= ",
		"--leader-elect-lease-duration=5s --leader-elect-renew-deadline=10s",
		"--drain-grace-period=-2",
		"--post-reboot-soak=-1s --min-reboot-interval=0",
		"--leader-elect=false --dry-run",
		"--max-concurrent-per-domain=2 --one-domain-at-a-time --topology-key=example.com/rack",
		"--max-concurrent-per-domain=-1",
		"--pool-budget=gpu:1:pool=gpu --pool-budget=spot:0:spot,!gpu",
		"--pool-budget=gpu:1: --pool-budget=gpu:x:a=b",
	} {
		f.Add(args)
	}
	f.Fuzz(func(t *testing.T, line string) {
		o := New(func(string) string { return "" })
		fs := pflag.NewFlagSet("controller", pflag.ContinueOnError)
		fs.SetOutput(nopWriter{})
		o.AddFlags(fs)
		if err := fs.Parse(strings.Split(line, " ")); err != nil {
			return
		}
		c, err := o.Complete()
		if err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(l, "--") && !strings.HasPrefix(l, "workers") {
					t.Fatalf("error line %q does not name its flag", l)
				}
			}
			return
		}
		cfg := c.Controller
		d := cfg.Decide
		if d.MaxConcurrent < 1 || d.DrainTimeout <= 0 || d.RebootTimeout <= 0 || d.PostRebootSoak < 0 || d.MinRebootInterval < 0 || len(d.Conditions) == 0 {
			t.Fatalf("valid options %q, configuration out of bounds: %+v", line, d)
		}
		switch d.OnDrainFailure {
		case decide.DrainFailureUncordon, decide.DrainFailureHold, decide.DrainFailureReboot:
		default:
			t.Fatalf("valid options %q, drain failure policy %q", line, d.OnDrainFailure)
		}
		for _, c := range d.Conditions {
			if c == "" || strings.TrimSpace(c) != c {
				t.Fatalf("valid options %q, condition type %q", line, c)
			}
		}
		if d.MaxConcurrentPerDomain < 0 || d.TopologyKey == "" {
			t.Fatalf("valid options %q, domain budget %d by %q", line, d.MaxConcurrentPerDomain, d.TopologyKey)
		}
		for _, p := range d.PoolBudgets {
			if p.Name == "" || p.MaxConcurrent < 0 || p.Selector == nil || p.Selector.Empty() {
				t.Fatalf("valid options %q, pool budget %+v", line, p)
			}
		}
		if cfg.Drain.RetryDelay <= 0 || cfg.Drain.GracePeriodSeconds < -1 {
			t.Fatalf("valid options %q, drain options %+v", line, cfg.Drain)
		}
	})
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
