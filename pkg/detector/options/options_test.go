package options

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/nodereboot/nodereboot/pkg/detector"
	"github.com/nodereboot/nodereboot/pkg/reboot"
)

func parse(t *testing.T, args ...string) *Options {
	t.Helper()
	t.Setenv(NodeNameEnv, "")
	o := New()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return o
}

func TestDefaults(t *testing.T) {
	o := parse(t, "--node-name=node-0")
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults with a node name: %v", err)
	}
	if o.Sentinel != "/var/run/reboot-required" || o.SentinelCommandPeriod != time.Minute || o.ResyncPeriod != 5*time.Minute ||
		o.ConditionType != "RebootRequired" || o.HeartbeatPeriod != 5*time.Minute || o.BootIDFile != "/proc/sys/kernel/random/boot_id" ||
		o.RebootMethod != "command" || o.RebootCommand != "/bin/systemctl reboot" || !o.HostMountNamespace ||
		o.RebootSignal != 39 || o.MetricsBindAddress != ":8080" || o.HealthProbeBindAddress != ":8081" || !o.Detection {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestNodeNameFromEnvironment(t *testing.T) {
	t.Setenv(NodeNameEnv, "from-env")
	if o := New(); o.NodeName != "from-env" {
		t.Fatalf("NodeName %q, want $%s", o.NodeName, NodeNameEnv)
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{nil, "--node-name"},
		{[]string{"--node-name=Not_A_Node"}, "--node-name"},
		{[]string{"--node-name=n", "--sentinel=relative/path"}, "--sentinel"},
		{[]string{"--node-name=n", "--sentinel-command= "}, "--sentinel-command"},
		{[]string{"--node-name=n", "--sentinel-command-period=0"}, "--sentinel-command-period"},
		{[]string{"--node-name=n", "--resync-period=-1s"}, "--resync-period"},
		{[]string{"--node-name=n", "--heartbeat-period=0"}, "--heartbeat-period"},
		{[]string{"--node-name=n", "--condition-type=Ready"}, "--condition-type"},
		{[]string{"--node-name=n", "--condition-type=has space"}, "--condition-type"},
		{[]string{"--node-name=n", "--boot-id-file="}, "--boot-id-file"},
		{[]string{"--node-name=n", "--reboot-method=reboot-f"}, "--reboot-method"},
		{[]string{"--node-name=n", "--reboot-method=none", "--detection=false"}, "--reboot-method"},
		{[]string{"--node-name=n", "--reboot-command="}, "--reboot-command"},
		{[]string{"--node-name=n", "--reboot-method=signal", "--reboot-signal=0"}, "--reboot-signal"},
		{[]string{"--node-name=n", "--reboot-method=dbus", "--dbus-socket="}, "--dbus-socket"},
		{[]string{"--node-name=n", "--metrics-bind-address=8080"}, "--metrics-bind-address"},
		{[]string{"--node-name=n", "--health-probe-bind-address=:99999"}, "--health-probe-bind-address"},
		{[]string{"--node-name=n", "--kube-api-qps=0"}, "--kube-api-qps"},
		{[]string{"--node-name=n", "--kube-api-burst=0"}, "--kube-api-burst"},
	} {
		err := parse(t, tc.args...).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.flag+":") {
			t.Errorf("%v: Validate() = %v, want an error naming %s", tc.args, err, tc.flag)
		}
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, args := range [][]string{
		{"--node-name=n", "--detection=false", "--sentinel="},
		{"--node-name=n", "--sentinel-command=/usr/bin/needs-restarting -r", "--sentinel="},
		{"--node-name=n", "--resync-period=0", "--metrics-bind-address=0", "--health-probe-bind-address=0"},
		{"--node-name=n", "--reboot-method=signal", "--reboot-command="},
		{"--node-name=n", "--reboot-method=dbus"},
		// One server for metrics and probes, as the controller allows.
		{"--node-name=n", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8080"},
	} {
		if err := parse(t, args...).Validate(); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// complete completes options that must be valid.
func complete(t *testing.T, o *Options) *Config {
	t.Helper()
	c, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigTranslation(t *testing.T) {
	cfg := complete(t, parse(t, "--node-name=n", "--reboot-command=/usr/bin/touch /tmp/x")).Detector
	if got, ok := cfg.Rebooter.(reboot.Command); !ok || strings.Join(got.Argv, " ") != "nsenter -m/proc/1/ns/mnt -- /usr/bin/touch /tmp/x" {
		t.Fatalf("command rebooter %+v", cfg.Rebooter)
	}
	cfg = complete(t, parse(t, "--node-name=n", "--reboot-command=/usr/bin/touch   /tmp/x", "--host-mount-namespace=false")).Detector
	if got := cfg.Rebooter.(reboot.Command); strings.Join(got.Argv, "|") != "/usr/bin/touch|/tmp/x" {
		t.Fatalf("command rebooter without nsenter %q", got.Argv)
	}
	cfg = complete(t, parse(t, "--node-name=n", "--reboot-method=signal")).Detector
	if got := cfg.Rebooter.(reboot.Signal); got.PID != 1 || got.Signal != syscall.Signal(39) {
		t.Fatalf("signal rebooter %+v", got)
	}
	cfg = complete(t, parse(t, "--node-name=n", "--reboot-method=dbus", "--dbus-socket=/run/x")).Detector
	if got := cfg.Rebooter.(reboot.DBus); got.Socket != "/run/x" {
		t.Fatalf("dbus rebooter %+v", got)
	}
	if cfg := complete(t, parse(t, "--node-name=n", "--reboot-method=none")).Detector; cfg.Rebooter != nil || !cfg.Detection {
		t.Fatalf("report-only config %+v", cfg)
	}
	cfg = complete(t, parse(t, "--node-name=n", "--sentinel=/host/run/reboot-required", "--resync-period=1m")).Detector
	if got := cfg.Source.(detector.FileSource); got.Path != "/host/run/reboot-required" || got.ResyncPeriod != time.Minute {
		t.Fatalf("file source %+v", got)
	}
	cfg = complete(t, parse(t, "--node-name=n", "--sentinel-command=/usr/bin/needs-restarting -r", "--sentinel-command-period=30s")).Detector
	if got := cfg.Source.(detector.CommandSource); strings.Join(got.Argv, " ") != "nsenter -m/proc/1/ns/mnt -- /usr/bin/needs-restarting -r" || got.Period != 30*time.Second {
		t.Fatalf("command source %+v", got)
	}
	if cfg := complete(t, parse(t, "--node-name=n", "--detection=false")).Detector; cfg.Source != nil || cfg.Detection {
		t.Fatalf("reboot-only config %+v", cfg)
	}
}

func TestRestConfig(t *testing.T) {
	c := complete(t, parse(t, "--node-name=n", "--kubeconfig=/nonexistent/kubeconfig"))
	if _, err := c.RESTConfig(); err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Fatalf("RestConfig with a missing kubeconfig: %v", err)
	}
}
