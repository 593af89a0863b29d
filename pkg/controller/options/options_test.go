package options

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/nodereboot/nodereboot/pkg/controller"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

func parse(t *testing.T, env map[string]string, args ...string) (*Options, error) {
	t.Helper()
	o := New(func(k string) string { return env[k] })
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	return o, o.Validate()
}

// controllerConfig is the controller's part of a configuration (zero
// without one).
func controllerConfig(c *Config) controller.Config {
	if c == nil {
		return controller.Config{}
	}
	return c.Controller
}

func TestDefaults(t *testing.T) {
	o, err := parse(t, nil)
	if err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	le := o.LeaderElection
	if !le.LeaderElect || le.LeaseDuration.Duration != 15*time.Second || le.RenewDeadline.Duration != 10*time.Second ||
		le.RetryPeriod.Duration != 2*time.Second || le.ResourceName != "nodereboot-controller" || le.ResourceNamespace != "nodereboot-system" {
		t.Errorf("leader election defaults: %+v", le)
	}
	if strings.Join(o.RebootConditions, ",") != "RebootRequired" || o.ConditionMinAge != 0 || o.NodeSelector != "" ||
		o.MaxConcurrent != 1 || o.DrainTimeout != 10*time.Minute || o.DrainGracePeriod != -1 || !o.DeleteEmptyDirData ||
		o.OnDrainFailure != "uncordon" || o.RebootTimeout != 30*time.Minute || o.PostRebootSoak != 0 ||
		o.MinRebootInterval != time.Hour || o.EvictionRetryDelay != 5*time.Second || o.AllowUnhealthyCluster || o.DryRun ||
		o.KubeAPIQPS != 50 || o.KubeAPIBurst != 100 {
		t.Errorf("defaults: %+v", o)
	}
	c, err := o.Complete()
	cfg := controllerConfig(c)
	if err != nil || cfg.Decide.Selector != nil || cfg.Drain.GracePeriodSeconds != -1 {
		t.Errorf("config from defaults: %+v, %v", cfg, err)
	}
}

func TestPodNamespace(t *testing.T) {
	o, err := parse(t, map[string]string{"POD_NAMESPACE": "kube-system"})
	if err != nil || o.LeaderElection.ResourceNamespace != "kube-system" {
		t.Fatalf("namespace %q, %v", o.LeaderElection.ResourceNamespace, err)
	}
	o, err = parse(t, map[string]string{"POD_NAMESPACE": "kube-system"}, "--leader-elect-resource-namespace=x")
	if err != nil || o.LeaderElection.ResourceNamespace != "x" {
		t.Fatalf("namespace %q, %v", o.LeaderElection.ResourceNamespace, err)
	}
}

func TestFlags(t *testing.T) {
	o, err := parse(t, nil, "--reboot-conditions=RebootRequired,KernelDeadlock", "--node-selector=pool=workers,zone!=a",
		"--max-concurrent=3", "--on-drain-failure=hold", "--drain-grace-period=30", "--delete-emptydir-data=false",
		"--post-reboot-soak=1m", "--dry-run", "--allow-unhealthy-cluster", "--leader-elect=false")
	if err != nil {
		t.Fatal(err)
	}
	c, err := o.Complete()
	cfg := controllerConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Decide.Conditions, ",") != "RebootRequired,KernelDeadlock" || cfg.Decide.Selector.String() != "pool=workers,zone!=a" ||
		cfg.Decide.MaxConcurrent != 3 || cfg.Decide.OnDrainFailure != decide.DrainFailureHold || cfg.Drain.GracePeriodSeconds != 30 ||
		cfg.Drain.DeleteEmptyDirData || cfg.Decide.PostRebootSoak != time.Minute || !cfg.DryRun || !cfg.Decide.AllowUnhealthyCluster {
		t.Errorf("config: %+v", cfg)
	}
}

func TestReleaseFlags(t *testing.T) {
	o, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	r := c.Controller.Decide.Release
	if !r.DaemonSetPods || r.Timeout != 10*time.Minute || len(r.Conditions) != 0 ||
		strings.Join(r.Taints, ",") != "readiness.k8s.io/*,node.kubernetes.io/network-unavailable,node.cloudprovider.kubernetes.io/uninitialized" {
		t.Errorf("release gate defaults: %+v", r)
	}
	o, err = parse(t, nil, "--release-conditions=NetworkUnavailable=False,example.com/CNIReady=True", "--release-taints=",
		"--release-daemonset-pods=false", "--release-timeout=2m")
	if err != nil {
		t.Fatal(err)
	}
	if c, err = o.Complete(); err != nil {
		t.Fatal(err)
	}
	r = c.Controller.Decide.Release
	if r.DaemonSetPods || r.Timeout != 2*time.Minute || len(r.Taints) != 0 || len(r.Conditions) != 2 ||
		r.Conditions[0].String() != "NetworkUnavailable=False" || r.Conditions[1].String() != "example.com/CNIReady=True" {
		t.Errorf("release gate: %+v", r)
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--max-concurrent=0"}, "--max-concurrent"},
		{[]string{"--kube-api-qps=0"}, "--kube-api-qps"},
		{[]string{"--reboot-days=mo,someday"}, "--reboot-days"},
		{[]string{"--start-time=25:00"}, "--start-time"},
		{[]string{"--end-time=noon"}, "--end-time"},
		{[]string{"--start-time=03:00", "--end-time=03:00"}, "--end-time"},
		{[]string{"--time-zone=Europe/Atlantis"}, "--time-zone"},
		{[]string{"--blocking-pod-selector=a b"}, "--blocking-pod-selector"},
		{[]string{"--prometheus-url=prometheus:9090"}, "--prometheus-url"},
		{[]string{"--alert-filter-regexp=("}, "--alert-filter-regexp"},
		{[]string{"--alert-filter-match-only"}, "--alert-filter-match-only"},
		{[]string{"--blocked-recheck-interval=0s"}, "--blocked-recheck-interval"},
		{[]string{"--pre-reboot-node-labels=novalue"}, "--pre-reboot-node-labels"},
		{[]string{"--pre-reboot-node-labels=bad key=x"}, "--pre-reboot-node-labels"},
		{[]string{"--post-reboot-node-labels=k=bad value"}, "--post-reboot-node-labels"},
		{[]string{"--post-reboot-node-labels=nodereboot.io/state=x"}, "--post-reboot-node-labels"},
		{[]string{"--drain-delay=-1s"}, "--drain-delay"},
		{[]string{"--drain-delay=10m"}, "--drain-delay"},
		{[]string{"--scale-down-protection-after=-1s"}, "--scale-down-protection-after"},
		{[]string{"--notify-url=nosuchservice://x"}, "--notify-url"},
		{[]string{"--notify-url=generic+http://127.0.0.1:1/x", "--notify-template={{.Nod}}"}, "--notify-template"},
		{[]string{"--notify-url=generic+http://127.0.0.1:1/x", "--notify-template-reboot={{"}, "--notify-template-reboot"},
		{[]string{"--notify-timeout=0s"}, "--notify-timeout"},
		{[]string{"--kube-api-burst=0"}, "--kube-api-burst"},
		{[]string{"--on-drain-failure=delete"}, "--on-drain-failure"},
		{[]string{"--node-selector=a b c"}, "--node-selector"},
		{[]string{"--drain-timeout=0s"}, "--drain-timeout"},
		{[]string{"--drain-grace-period=-2"}, "--drain-grace-period"},
		{[]string{"--reboot-timeout=-1s"}, "--reboot-timeout"},
		{[]string{"--post-reboot-soak=-1s"}, "--post-reboot-soak"},
		{[]string{"--min-reboot-interval=-1s"}, "--min-reboot-interval"},
		{[]string{"--condition-min-age=-1s"}, "--condition-min-age"},
		{[]string{"--eviction-retry-delay=0s"}, "--eviction-retry-delay"},
		{[]string{"--reboot-conditions="}, "--reboot-conditions"},
		{[]string{"--reboot-conditions=a b"}, "--reboot-conditions"},
		{[]string{"--leader-elect-renew-deadline=20s"}, "--leader-elect-renew-deadline"},
		{[]string{"--leader-elect-lease-duration=0s"}, "--leader-elect-lease-duration"},
		{[]string{"--leader-elect-retry-period=0s"}, "--leader-elect-retry-period"},
		{[]string{"--leader-elect-resource-lock=endpoints"}, "--leader-elect-resource-lock"},
		{[]string{"--leader-elect-resource-name="}, "--leader-elect-resource-name"},
		{[]string{"--metrics-bind-address=nope"}, "--metrics-bind-address"},
		{[]string{"--health-probe-bind-address=:http-ish"}, "--health-probe-bind-address"},
		{[]string{"--release-conditions=NetworkUnavailable"}, "--release-conditions"},
		{[]string{"--release-conditions=NetworkUnavailable=false"}, "--release-conditions"},
		{[]string{"--release-taints=a*b"}, "--release-taints"},
		{[]string{"--release-taints=node.kubernetes.io/unschedulable"}, "--release-taints"},
		{[]string{"--release-timeout=-1s"}, "--release-timeout"},
	} {
		_, err := parse(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%v: error %v does not name %s", tc.args, err, tc.flag)
		}
	}
	// Leader election settings are not checked without leader election.
	if _, err := parse(t, nil, "--leader-elect=false", "--leader-elect-renew-deadline=20s"); err != nil {
		t.Errorf("leader election disabled: %v", err)
	}
	// Several errors are all reported.
	_, err := parse(t, nil, "--max-concurrent=0", "--drain-timeout=0s")
	if err == nil || !strings.Contains(err.Error(), "--max-concurrent") || !strings.Contains(err.Error(), "--drain-timeout") {
		t.Errorf("errors %v: want both flags", err)
	}
}

// The clock-offset hook of the fault tests is a hidden flag.
func TestTestingClockOffsetHidden(t *testing.T) {
	o := New(func(string) string { return "" })
	fs := pflag.NewFlagSet("c", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--testing-clock-offset=5m"}); err != nil {
		t.Fatal(err)
	}
	if o.TestingClockOffset != 5*time.Minute {
		t.Fatalf("offset %v", o.TestingClockOffset)
	}
	if f := fs.Lookup("testing-clock-offset"); f == nil || !f.Hidden {
		t.Fatal("--testing-clock-offset must exist and be hidden")
	}
}

func TestGateFlags(t *testing.T) {
	o, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := o.Complete()
	cfg := controllerConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Decide.Window != nil || cfg.BlockingPods != nil || cfg.Alerts != nil || !cfg.Decide.ScaleDownProtection ||
		cfg.Decide.ScaleDownProtectionAfter != 10*time.Minute || cfg.RecheckInterval != time.Minute ||
		cfg.PauseNamespace != "nodereboot-system" || cfg.Decide.DrainDelay != 0 {
		t.Errorf("gate defaults: %+v", cfg)
	}
	o, err = parse(t, nil, "--reboot-days=sat,sun", "--start-time=22:00", "--end-time=04:00", "--time-zone=Europe/Berlin",
		"--blocking-pod-selector=app=backup,tier=db", "--blocking-pod-selector=critical=true",
		"--prometheus-url=http://prometheus:9090", "--alert-filter-regexp=^Watchdog$", "--alert-firing-only",
		"--pre-reboot-node-labels=reboot=pending,maintenance=true", "--post-reboot-node-labels=reboot=done",
		"--drain-delay=30s", "--scale-down-protection=false", "--blocked-recheck-interval=10s")
	if err != nil {
		t.Fatal(err)
	}
	c, err = o.Complete()
	cfg = controllerConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Decide
	if d.Window.String() != "sa,su 22:00-04:00 Europe/Berlin" {
		t.Errorf("window %s", d.Window)
	}
	if cfg.BlockingPods.String() != "app=backup,tier=db | critical=true" {
		t.Errorf("blocking pods %s", cfg.BlockingPods)
	}
	if a := cfg.Alerts; a == nil || a.URL != "http://prometheus:9090" || a.Filter.String() != "^Watchdog$" || a.MatchOnly || !a.FiringOnly {
		t.Errorf("alerts %+v", a)
	}
	if len(d.PreRebootLabels) != 2 || d.PreRebootLabels["reboot"] != "pending" || d.PostRebootLabels["reboot"] != "done" {
		t.Errorf("labels %v %v", d.PreRebootLabels, d.PostRebootLabels)
	}
	if d.DrainDelay != 30*time.Second || d.ScaleDownProtection || cfg.RecheckInterval != 10*time.Second {
		t.Errorf("config %+v", cfg)
	}
}

func TestNotifyFlags(t *testing.T) {
	o, err := parse(t, nil, "--notify-url=generic+http://127.0.0.1:1/a", "--notify-url=generic+http://127.0.0.1:1/b",
		"--notify-template={{.Step}} {{.Node}}", "--notify-template-failure=FAILED {{.Node}}", "--notify-timeout=3s")
	if err != nil {
		t.Fatal(err)
	}
	nc := o.NotifyConfig(nil)
	if len(nc.URLs) != 2 || nc.Template != "{{.Step}} {{.Node}}" || nc.StepTemplates["failure"] != "FAILED {{.Node}}" ||
		len(nc.StepTemplates) != 1 || nc.Timeout != 3*time.Second {
		t.Errorf("notify config %+v", nc)
	}
}
