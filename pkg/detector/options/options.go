package options

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodereboot/nodereboot/pkg/cli"
	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/detector"
	"github.com/nodereboot/nodereboot/pkg/reboot"
	"github.com/nodereboot/nodereboot/pkg/serving"
	"github.com/nodereboot/nodereboot/pkg/version"
)

// Reboot methods, the values of --reboot-method.
const (
	MethodCommand = "command"
	MethodSignal  = "signal"
	MethodDBus    = "dbus"
	// MethodNone reports and never reboots: the sentinel container of a
	// split detector pod, next to a --detection=false container that
	// reboots (docs/detector.md, "Detection without the host's /var/run").
	MethodNone = "none"
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
	fs.StringVar(&o.RebootMethod, "reboot-method", o.RebootMethod, "How to reboot: command, signal (to PID 1), dbus (logind) or none (report only; another container reboots).")
	fs.StringVar(&o.RebootCommand, "reboot-command", o.RebootCommand, "Reboot command for --reboot-method=command, split on whitespace, no shell.")
	fs.BoolVar(&o.HostMountNamespace, "host-mount-namespace", o.HostMountNamespace, "Run the reboot command and the sentinel command in the host's mount namespace (nsenter -m/proc/1/ns/mnt --; needs hostPID and privileges).")
	fs.IntVar(&o.RebootSignal, "reboot-signal", o.RebootSignal, "Signal sent to PID 1 for --reboot-method=signal (default SIGRTMIN+5: systemd's orderly reboot).")
	fs.StringVar(&o.DBusSocket, "dbus-socket", o.DBusSocket, "System bus socket for --reboot-method=dbus.")

	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address of /metrics; 0 disables.")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address of /healthz and /readyz; 0 disables; equal to --metrics-bind-address: one server serves all three paths.")
}

// Config is the detector process's configuration: what Complete made of
// the options, every flag read once.
type Config struct {
	// Detector is the detector's configuration; its Client is left to the
	// caller (kubeclient.New of RESTConfig).
	Detector detector.Config
	// Kubeconfig, QPS and Burst configure the API client.
	Kubeconfig string
	QPS        float32
	Burst      int
}

// Complete checks the options and converts them to the configuration in one
// pass. The error lists every bad flag, one a line, each naming its flag.
func (o *Options) Complete() (*Config, error) {
	var errs cli.FlagErrors
	o.checkClient(&errs)
	o.checkDetection(&errs)
	o.checkReboot(&errs)
	o.checkServing(&errs)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	cfg := &Config{
		Kubeconfig: o.Kubeconfig,
		QPS:        o.KubeAPIQPS,
		Burst:      o.KubeAPIBurst,
		Detector: detector.Config{
			NodeName:        o.NodeName,
			ConditionType:   o.ConditionType,
			Detection:       o.Detection,
			HeartbeatPeriod: o.HeartbeatPeriod,
			BootIDFile:      o.BootIDFile,
			Rebooter:        o.rebooter(),
			MetricsAddress:  o.MetricsBindAddress,
			HealthAddress:   o.HealthProbeBindAddress,
		},
	}
	if o.Detection {
		cfg.Detector.Source = o.source()
	}
	return cfg, nil
}

// Validate reports Complete's errors, for callers that only check a command
// line (the manifests' tests).
func (o *Options) Validate() error {
	_, err := o.Complete()
	return err
}

// checkClient checks the node name and the API client's rate limits.
func (o *Options) checkClient(errs *cli.FlagErrors) {
	if o.NodeName == "" {
		errs.Add("node-name", "required (or set $%s)", NodeNameEnv)
	} else if msgs := validation.IsDNS1123Subdomain(o.NodeName); len(msgs) > 0 {
		errs.Add("node-name", "%q is not a node name: %s", o.NodeName, strings.Join(msgs, "; "))
	}
	if o.KubeAPIQPS <= 0 {
		errs.Add("kube-api-qps", "must be positive, got %v", o.KubeAPIQPS)
	}
	if o.KubeAPIBurst <= 0 {
		errs.Add("kube-api-burst", "must be positive, got %d", o.KubeAPIBurst)
	}
}

// checkDetection checks the sentinel and the condition (with --detection
// only).
func (o *Options) checkDetection(errs *cli.FlagErrors) {
	if !o.Detection {
		return
	}
	if o.SentinelCommand == "" {
		if o.Sentinel == "" || !filepath.IsAbs(o.Sentinel) {
			errs.Add("sentinel", "must be an absolute path, got %q", o.Sentinel)
		}
	} else if len(strings.Fields(o.SentinelCommand)) == 0 {
		errs.Add("sentinel-command", "is blank")
	}
	if o.SentinelCommandPeriod <= 0 {
		errs.Add("sentinel-command-period", "must be positive, got %v", o.SentinelCommandPeriod)
	}
	if o.ResyncPeriod < 0 {
		errs.Add("resync-period", "must not be negative (0 disables), got %v", o.ResyncPeriod)
	}
	if o.HeartbeatPeriod <= 0 {
		errs.Add("heartbeat-period", "must be positive, got %v", o.HeartbeatPeriod)
	}
	if msgs := validation.IsQualifiedName(o.ConditionType); len(msgs) > 0 {
		errs.Add("condition-type", "%q is not a valid condition type: %s", o.ConditionType, strings.Join(msgs, "; "))
	}
	if slices.Contains(kubeletConditions, o.ConditionType) {
		errs.Add("condition-type", "%q is the kubelet's condition", o.ConditionType)
	}
}

// checkReboot checks the boot ID file and the reboot method.
func (o *Options) checkReboot(errs *cli.FlagErrors) {
	if o.BootIDFile == "" {
		errs.Add("boot-id-file", "required")
	}
	switch o.RebootMethod {
	case MethodCommand:
		if len(strings.Fields(o.RebootCommand)) == 0 {
			errs.Add("reboot-command", "required with --reboot-method=%s", MethodCommand)
		}
	case MethodSignal:
		if o.RebootSignal < 1 || o.RebootSignal > 64 {
			errs.Add("reboot-signal", "must be a Linux signal number (1-64), got %d", o.RebootSignal)
		}
	case MethodDBus:
		if o.DBusSocket == "" {
			errs.Add("dbus-socket", "required with --reboot-method=%s", MethodDBus)
		}
	case MethodNone:
		if !o.Detection {
			errs.Add("reboot-method", "%s needs --detection (a detector that neither detects nor reboots does nothing)", MethodNone)
		}
	default:
		errs.Add("reboot-method", "must be %s, %s, %s or %s, got %q", MethodCommand, MethodSignal, MethodDBus, MethodNone, o.RebootMethod)
	}
}

// checkServing checks the servers' addresses; the same address for both
// serves the three paths on one server (serving.NewGroup).
func (o *Options) checkServing(errs *cli.FlagErrors) {
	errs.Check("metrics-bind-address", serving.ValidateAddress(o.MetricsBindAddress))
	errs.Check("health-probe-bind-address", serving.ValidateAddress(o.HealthProbeBindAddress))
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

// RESTConfig is the client configuration: --kubeconfig or in-cluster, with
// the detector's user agent and rate limits.
func (c *Config) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("client configuration (--kubeconfig=%q): %w", c.Kubeconfig, err)
	}
	cfg.UserAgent = version.UserAgent(contract.DetectorComponent)
	cfg.QPS = c.QPS
	cfg.Burst = c.Burst
	return cfg, nil
}

// rebooter is the reboot method; nil for none.
func (o *Options) rebooter() reboot.Rebooter {
	switch o.RebootMethod {
	case MethodNone:
		return nil
	case MethodSignal:
		return reboot.Signal{PID: 1, Signal: syscall.Signal(o.RebootSignal)}
	case MethodDBus:
		return reboot.DBus{Socket: o.DBusSocket}
	default:
		return reboot.Command{Argv: o.hostCommand(o.RebootCommand)}
	}
}

// source is the sentinel observation: the command when set, else the file.
func (o *Options) source() detector.Source {
	if o.SentinelCommand != "" {
		return detector.CommandSource{Argv: o.hostCommand(o.SentinelCommand), Period: o.SentinelCommandPeriod}
	}
	return detector.FileSource{Path: o.Sentinel, ResyncPeriod: o.ResyncPeriod}
}
