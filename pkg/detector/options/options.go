package options

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/detector"
	"github.com/nodereboot/nodereboot/pkg/reboot"
	"github.com/nodereboot/nodereboot/pkg/serving"
)

// Reboot methods, the values of --reboot-method.
const (
	MethodCommand = "command"
	MethodSignal  = "signal"
	MethodDBus    = "dbus"
)

// Defaults.
const (
	DefaultSentinel              = "/var/run/reboot-required"
	DefaultSentinelCommandPeriod = time.Minute
	DefaultResyncPeriod          = 5 * time.Minute
	DefaultHeartbeatPeriod       = 5 * time.Minute
	DefaultBootIDFile            = "/proc/sys/kernel/random/boot_id"
	DefaultRebootCommand         = "/bin/systemctl reboot"
	DefaultMetricsBindAddress    = ":8080"
	DefaultHealthBindAddress     = ":8081"
	DefaultKubeAPIQPS            = 10
	DefaultKubeAPIBurst          = 20
	// NodeNameEnv is the environment variable --node-name defaults to (set
	// it from spec.nodeName with the downward API).
	NodeNameEnv = "NODE_NAME"
)

// HostMountNamespacePrefix runs a command in the mount namespace of PID 1
// (the host's, with hostPID): the host's binaries and its systemd.
var HostMountNamespacePrefix = []string{"nsenter", "-m/proc/1/ns/mnt", "--"}

// kubeletConditions are the condition types the kubelet owns.
var kubeletConditions = []string{"Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}

// Options are the detector's command-line options.
type Options struct {
	Kubeconfig   string
	KubeAPIQPS   float32
	KubeAPIBurst int
	NodeName     string

	Sentinel              string
	SentinelCommand       string
	SentinelCommandPeriod time.Duration
	ResyncPeriod          time.Duration
	Detection             bool
	ConditionType         string
	HeartbeatPeriod       time.Duration

	BootIDFile         string
	RebootMethod       string
	RebootCommand      string
	HostMountNamespace bool
	RebootSignal       int
	DBusSocket         string

	MetricsBindAddress     string
	HealthProbeBindAddress string
}

// New returns the default options; --node-name defaults to $NODE_NAME.
func New() *Options {
	return &Options{
		KubeAPIQPS:             DefaultKubeAPIQPS,
		KubeAPIBurst:           DefaultKubeAPIBurst,
		NodeName:               os.Getenv(NodeNameEnv),
		Sentinel:               DefaultSentinel,
		SentinelCommandPeriod:  DefaultSentinelCommandPeriod,
		ResyncPeriod:           DefaultResyncPeriod,
		Detection:              true,
		ConditionType:          contract.DefaultConditionType,
		HeartbeatPeriod:        DefaultHeartbeatPeriod,
		BootIDFile:             DefaultBootIDFile,
		RebootMethod:           MethodCommand,
		RebootCommand:          DefaultRebootCommand,
		HostMountNamespace:     true,
		RebootSignal:           int(reboot.DefaultSignal),
		DBusSocket:             reboot.DefaultSystemBusSocket,
		MetricsBindAddress:     DefaultMetricsBindAddress,
		HealthProbeBindAddress: DefaultHealthBindAddress,
	}
}

// AddFlags adds the detector's flags to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig. Empty: the in-cluster configuration (service account).")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Queries per second to the API server.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst of queries to the API server.")
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "Name of this node (required; default $"+NodeNameEnv+").")

	fs.StringVar(&o.Sentinel, "sentinel", o.Sentinel, "Absolute path of the file whose existence means a reboot is required.")
	fs.StringVar(&o.SentinelCommand, "sentinel-command", o.SentinelCommand, "Command that replaces --sentinel: exit 0 = reboot required, 1 = not required, anything else = unknown. Split on whitespace, no shell.")
	fs.DurationVar(&o.SentinelCommandPeriod, "sentinel-command-period", o.SentinelCommandPeriod, "How often --sentinel-command runs; also its timeout.")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", o.ResyncPeriod, "How often the sentinel is looked at without an inotify event (a fallback for file systems that miss events); 0 disables.")
	fs.BoolVar(&o.Detection, "detection", o.Detection, "Observe the sentinel and write the node condition. false: reboot-only mode, for clusters where node-problem-detector owns the condition.")
	fs.StringVar(&o.ConditionType, "condition-type", o.ConditionType, "Type of the node condition the detector writes.")
	fs.DurationVar(&o.HeartbeatPeriod, "heartbeat-period", o.HeartbeatPeriod, "How often an unchanged condition is written again (lastHeartbeatTime).")

	fs.StringVar(&o.BootIDFile, "boot-id-file", o.BootIDFile, "File holding the current boot ID.")
	fs.StringVar(&o.RebootMethod, "reboot-method", o.RebootMethod, "How to reboot: command, signal (to PID 1) or dbus (logind).")
	fs.StringVar(&o.RebootCommand, "reboot-command", o.RebootCommand, "Reboot command for --reboot-method=command, split on whitespace, no shell.")
	fs.BoolVar(&o.HostMountNamespace, "host-mount-namespace", o.HostMountNamespace, "Run the reboot command and the sentinel command in the host's mount namespace (nsenter -m/proc/1/ns/mnt --; needs hostPID and privileges).")
	fs.IntVar(&o.RebootSignal, "reboot-signal", o.RebootSignal, "Signal sent to PID 1 for --reboot-method=signal (default SIGRTMIN+5: systemd's orderly reboot).")
	fs.StringVar(&o.DBusSocket, "dbus-socket", o.DBusSocket, "System bus socket for --reboot-method=dbus.")

	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address of /metrics; 0 disables.")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address of /healthz and /readyz; 0 disables.")
}

// Validate checks the options; every error names its flag.
func (o *Options) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if o.NodeName == "" {
		bad("node-name", "required (or set $%s)", NodeNameEnv)
	} else if msgs := validation.IsDNS1123Subdomain(o.NodeName); len(msgs) > 0 {
		bad("node-name", "%q is not a node name: %s", o.NodeName, strings.Join(msgs, "; "))
	}
	if o.KubeAPIQPS <= 0 {
		bad("kube-api-qps", "must be positive, got %v", o.KubeAPIQPS)
	}
	if o.KubeAPIBurst <= 0 {
		bad("kube-api-burst", "must be positive, got %d", o.KubeAPIBurst)
	}
	if o.Detection {
		if o.SentinelCommand == "" {
			if o.Sentinel == "" || !filepath.IsAbs(o.Sentinel) {
				bad("sentinel", "must be an absolute path, got %q", o.Sentinel)
			}
		} else if len(strings.Fields(o.SentinelCommand)) == 0 {
			bad("sentinel-command", "is blank")
		}
		if o.SentinelCommandPeriod <= 0 {
			bad("sentinel-command-period", "must be positive, got %v", o.SentinelCommandPeriod)
		}
		if o.ResyncPeriod < 0 {
			bad("resync-period", "must not be negative (0 disables), got %v", o.ResyncPeriod)
		}
		if o.HeartbeatPeriod <= 0 {
			bad("heartbeat-period", "must be positive, got %v", o.HeartbeatPeriod)
		}
		if msgs := validation.IsQualifiedName(o.ConditionType); len(msgs) > 0 {
			bad("condition-type", "%q is not a valid condition type: %s", o.ConditionType, strings.Join(msgs, "; "))
		}
		for _, k := range kubeletConditions {
			if o.ConditionType == k {
				bad("condition-type", "%q is the kubelet's condition", o.ConditionType)
			}
		}
	}
	if o.BootIDFile == "" {
		bad("boot-id-file", "required")
	}
	switch o.RebootMethod {
	case MethodCommand:
		if len(strings.Fields(o.RebootCommand)) == 0 {
			bad("reboot-command", "required with --reboot-method=%s", MethodCommand)
		}
	case MethodSignal:
		if o.RebootSignal < 1 || o.RebootSignal > 64 {
			bad("reboot-signal", "must be a Linux signal number (1-64), got %d", o.RebootSignal)
		}
	case MethodDBus:
		if o.DBusSocket == "" {
			bad("dbus-socket", "required with --reboot-method=%s", MethodDBus)
		}
	default:
		bad("reboot-method", "must be %s, %s or %s, got %q", MethodCommand, MethodSignal, MethodDBus, o.RebootMethod)
	}
	if err := serving.ValidateAddress(o.MetricsBindAddress); err != nil {
		bad("metrics-bind-address", "%v", err)
	}
	if err := serving.ValidateAddress(o.HealthProbeBindAddress); err != nil {
		bad("health-probe-bind-address", "%v", err)
	}
	if !serving.Disabled(o.MetricsBindAddress) && o.MetricsBindAddress == o.HealthProbeBindAddress {
		bad("health-probe-bind-address", "must differ from --metrics-bind-address %q", o.MetricsBindAddress)
	}
	return errors.Join(errs...)
}

// hostCommand splits a command line and, with --host-mount-namespace, runs
// it in the host's mount namespace.
func (o *Options) hostCommand(line string) []string {
	argv := strings.Fields(line)
	if o.HostMountNamespace {
		argv = append(append([]string(nil), HostMountNamespacePrefix...), argv...)
	}
	return argv
}

// RestConfig is the client configuration: --kubeconfig or in-cluster, with
// the detector's user agent and rate limits.
func (o *Options) RestConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("client configuration (--kubeconfig=%q): %w", o.Kubeconfig, err)
	}
	cfg.UserAgent = contract.DetectorComponent
	cfg.QPS = o.KubeAPIQPS
	cfg.Burst = o.KubeAPIBurst
	return cfg, nil
}

// Rebooter is the reboot method.
func (o *Options) Rebooter() reboot.Rebooter {
	switch o.RebootMethod {
	case MethodSignal:
		return reboot.Signal{PID: 1, Signal: syscall.Signal(o.RebootSignal)}
	case MethodDBus:
		return reboot.DBus{Socket: o.DBusSocket}
	default:
		return reboot.Command{Argv: o.hostCommand(o.RebootCommand)}
	}
}

// Source is the sentinel observation: the command when set, else the file.
func (o *Options) Source() detector.Source {
	if o.SentinelCommand != "" {
		return detector.CommandSource{Argv: o.hostCommand(o.SentinelCommand), Period: o.SentinelCommandPeriod}
	}
	return detector.FileSource{Path: o.Sentinel, ResyncPeriod: o.ResyncPeriod}
}

// Config is the detector's configuration for a validated Options.
func (o *Options) Config(client detector.Client) detector.Config {
	cfg := detector.Config{
		Client:          client,
		NodeName:        o.NodeName,
		ConditionType:   o.ConditionType,
		Detection:       o.Detection,
		HeartbeatPeriod: o.HeartbeatPeriod,
		BootIDFile:      o.BootIDFile,
		Rebooter:        o.Rebooter(),
		MetricsAddress:  o.MetricsBindAddress,
		HealthAddress:   o.HealthProbeBindAddress,
	}
	if o.Detection {
		cfg.Source = o.Source()
	}
	return cfg
}
