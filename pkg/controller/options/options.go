package options

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	componentbaseconfig "k8s.io/component-base/config"
	cbopts "k8s.io/component-base/config/options"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/drain"
	"github.com/nodereboot/nodereboot/pkg/serving"
)

// DefaultNamespace is the lease namespace when POD_NAMESPACE is not set.
const DefaultNamespace = "nodereboot-system"

// Options are the controller's command-line options.
type Options struct {
	Kubeconfig     string
	LeaderElection componentbaseconfig.LeaderElectionConfiguration

	RebootConditions      []string
	ConditionMinAge       time.Duration
	NodeSelector          string
	MaxConcurrent         int
	DrainTimeout          time.Duration
	DrainGracePeriod      int64
	DeleteEmptyDirData    bool
	OnDrainFailure        string
	DrainFailureBackoff   time.Duration
	RebootTimeout         time.Duration
	PostRebootSoak        time.Duration
	MinRebootInterval     time.Duration
	EvictionRetryDelay    time.Duration
	AllowUnhealthyCluster bool
	DryRun                bool

	MetricsBindAddress     string
	HealthProbeBindAddress string
	// Workers is the number of queue workers (not a flag).
	Workers int
	// TestingClockOffset shifts the controller's clock (hidden flag
	// --testing-clock-offset, for the clock-skew fault tests only).
	TestingClockOffset time.Duration
}

// New returns the defaults. getenv reads POD_NAMESPACE (the lease's
// namespace default); pass os.Getenv.
func New(getenv func(string) string) *Options {
	ns := getenv("POD_NAMESPACE")
	if ns == "" {
		ns = DefaultNamespace
	}
	return &Options{
		LeaderElection: componentbaseconfig.LeaderElectionConfiguration{
			LeaderElect:       true,
			LeaseDuration:     metav1.Duration{Duration: 15 * time.Second},
			RenewDeadline:     metav1.Duration{Duration: 10 * time.Second},
			RetryPeriod:       metav1.Duration{Duration: 2 * time.Second},
			ResourceLock:      "leases",
			ResourceName:      contract.ControllerComponent,
			ResourceNamespace: ns,
		},
		RebootConditions:       []string{contract.DefaultConditionType},
		MaxConcurrent:          1,
		DrainTimeout:           10 * time.Minute,
		DrainGracePeriod:       -1,
		DeleteEmptyDirData:     true,
		OnDrainFailure:         string(decide.DrainFailureUncordon),
		DrainFailureBackoff:    30 * time.Minute,
		RebootTimeout:          30 * time.Minute,
		MinRebootInterval:      time.Hour,
		EvictionRetryDelay:     5 * time.Second,
		MetricsBindAddress:     ":8080",
		HealthProbeBindAddress: ":8081",
		Workers:                4,
	}
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Path to a kubeconfig. Empty: the in-cluster service account.")
	cbopts.BindLeaderElectionFlags(&o.LeaderElection, fs)
	fs.StringSliceVar(&o.RebootConditions, "reboot-conditions", o.RebootConditions,
		"Node condition types that, with status True, ask for a reboot (comma-separated).")
	fs.DurationVar(&o.ConditionMinAge, "condition-min-age", o.ConditionMinAge,
		"How long a reboot condition must have been True before the node is queued.")
	fs.StringVar(&o.NodeSelector, "node-selector", o.NodeSelector,
		"Label selector of the nodes to reboot (empty: all). Nodes labelled "+contract.LabelDisabled+"=true are always skipped.")
	fs.IntVar(&o.MaxConcurrent, "max-concurrent", o.MaxConcurrent,
		"Most nodes in the pipeline (cordoned, draining, rebooting, soaking or failed) at any moment.")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", o.DrainTimeout,
		"How long a drain may take, from the cordon; then --on-drain-failure applies.")
	fs.Int64Var(&o.DrainGracePeriod, "drain-grace-period", o.DrainGracePeriod,
		"Termination grace period in seconds for evicted pods; -1: each pod's own.")
	fs.BoolVar(&o.DeleteEmptyDirData, "delete-emptydir-data", o.DeleteEmptyDirData,
		"Evict pods with emptyDir volumes (their data is lost). When false, such pods block the drain.")
	fs.StringVar(&o.OnDrainFailure, "on-drain-failure", o.OnDrainFailure,
		"What to do when a drain times out: uncordon (give the node back for --drain-failure-backoff), hold (mark it Failed, keep it cordoned), reboot (reboot anyway).")
	fs.DurationVar(&o.DrainFailureBackoff, "drain-failure-backoff", o.DrainFailureBackoff,
		"With --on-drain-failure=uncordon, how long a node whose drain failed is left alone.")
	fs.DurationVar(&o.RebootTimeout, "reboot-timeout", o.RebootTimeout,
		"How long after the authorization a node must be back (new boot ID, Ready); then it is marked Failed.")
	fs.DurationVar(&o.PostRebootSoak, "post-reboot-soak", o.PostRebootSoak,
		"How long a rebooted node must stay Ready before it is uncordoned.")
	fs.DurationVar(&o.MinRebootInterval, "min-reboot-interval", o.MinRebootInterval,
		"Least time between two reboots of the same node.")
	fs.DurationVar(&o.EvictionRetryDelay, "eviction-retry-delay", o.EvictionRetryDelay,
		"Delay before evicting a pod again after a refusal (PodDisruptionBudget) or an error.")
	fs.BoolVar(&o.AllowUnhealthyCluster, "allow-unhealthy-cluster", o.AllowUnhealthyCluster,
		"Take nodes even while other selected nodes are NotReady.")
	fs.BoolVar(&o.DryRun, "dry-run", o.DryRun,
		"Log every decision and record it as a DryRun event; change nothing.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"Address of /metrics ([host]:port; 0 disables).")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress,
		"Address of /healthz and /readyz ([host]:port; 0 disables).")
	fs.DurationVar(&o.TestingClockOffset, "testing-clock-offset", o.TestingClockOffset,
		"Testing only: shift the controller's clock by this much (clock-skew fault tests).")
	_ = fs.MarkHidden("testing-clock-offset")
}

// Validate checks the options; each error names its flag.
func (o *Options) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	le := o.LeaderElection
	if le.LeaderElect {
		if le.LeaseDuration.Duration <= 0 {
			bad("leader-elect-lease-duration", "must be positive, got %s", le.LeaseDuration.Duration)
		}
		if le.RenewDeadline.Duration <= 0 {
			bad("leader-elect-renew-deadline", "must be positive, got %s", le.RenewDeadline.Duration)
		} else if le.RenewDeadline.Duration >= le.LeaseDuration.Duration {
			bad("leader-elect-renew-deadline", "must be less than --leader-elect-lease-duration (%s), got %s", le.LeaseDuration.Duration, le.RenewDeadline.Duration)
		}
		if le.RetryPeriod.Duration <= 0 {
			bad("leader-elect-retry-period", "must be positive, got %s", le.RetryPeriod.Duration)
		}
		if le.ResourceLock != "leases" {
			bad("leader-elect-resource-lock", "only \"leases\" is supported, got %q", le.ResourceLock)
		}
		if le.ResourceName == "" {
			bad("leader-elect-resource-name", "must not be empty")
		}
		if le.ResourceNamespace == "" {
			bad("leader-elect-resource-namespace", "must not be empty")
		}
	}
	if len(o.RebootConditions) == 0 {
		bad("reboot-conditions", "must name at least one condition type")
	}
	for _, c := range o.RebootConditions {
		if strings.TrimSpace(c) == "" || strings.ContainsAny(c, " \t") {
			bad("reboot-conditions", "invalid condition type %q", c)
		}
	}
	if o.ConditionMinAge < 0 {
		bad("condition-min-age", "must not be negative, got %s", o.ConditionMinAge)
	}
	if _, err := labels.Parse(o.NodeSelector); err != nil {
		bad("node-selector", "%v", err)
	}
	if o.MaxConcurrent < 1 {
		bad("max-concurrent", "must be at least 1, got %d", o.MaxConcurrent)
	}
	if o.DrainTimeout <= 0 {
		bad("drain-timeout", "must be positive, got %s", o.DrainTimeout)
	}
	if o.DrainGracePeriod < -1 {
		bad("drain-grace-period", "must be -1 (each pod's own) or a number of seconds >= 0, got %d", o.DrainGracePeriod)
	}
	switch decide.DrainFailurePolicy(o.OnDrainFailure) {
	case decide.DrainFailureUncordon, decide.DrainFailureHold, decide.DrainFailureReboot:
	default:
		bad("on-drain-failure", "must be uncordon, hold or reboot, got %q", o.OnDrainFailure)
	}
	if o.DrainFailureBackoff < 0 {
		bad("drain-failure-backoff", "must not be negative, got %s", o.DrainFailureBackoff)
	}
	if o.RebootTimeout <= 0 {
		bad("reboot-timeout", "must be positive, got %s", o.RebootTimeout)
	}
	if o.PostRebootSoak < 0 {
		bad("post-reboot-soak", "must not be negative, got %s", o.PostRebootSoak)
	}
	if o.MinRebootInterval < 0 {
		bad("min-reboot-interval", "must not be negative, got %s", o.MinRebootInterval)
	}
	if o.EvictionRetryDelay <= 0 {
		bad("eviction-retry-delay", "must be positive, got %s", o.EvictionRetryDelay)
	}
	if err := serving.ValidateAddress(o.MetricsBindAddress); err != nil {
		bad("metrics-bind-address", "%v", err)
	}
	if err := serving.ValidateAddress(o.HealthProbeBindAddress); err != nil {
		bad("health-probe-bind-address", "%v", err)
	}
	if o.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers must be at least 1, got %d", o.Workers))
	}
	return errors.Join(errs...)
}

// Config converts validated options to the controller's configuration.
func (o *Options) Config() (controller.Config, error) {
	sel, err := labels.Parse(o.NodeSelector)
	if err != nil {
		return controller.Config{}, fmt.Errorf("--node-selector: %w", err)
	}
	if o.NodeSelector == "" {
		sel = nil
	}
	conds := make([]string, 0, len(o.RebootConditions))
	for _, c := range o.RebootConditions {
		conds = append(conds, strings.TrimSpace(c))
	}
	return controller.Config{
		Decide: decide.Config{
			Conditions:            conds,
			ConditionMinAge:       o.ConditionMinAge,
			Selector:              sel,
			MaxConcurrent:         o.MaxConcurrent,
			DrainTimeout:          o.DrainTimeout,
			OnDrainFailure:        decide.DrainFailurePolicy(o.OnDrainFailure),
			DrainFailureBackoff:   o.DrainFailureBackoff,
			RebootTimeout:         o.RebootTimeout,
			PostRebootSoak:        o.PostRebootSoak,
			MinRebootInterval:     o.MinRebootInterval,
			AllowUnhealthyCluster: o.AllowUnhealthyCluster,
		},
		Drain: drain.Options{
			GracePeriodSeconds: o.DrainGracePeriod,
			DeleteEmptyDirData: o.DeleteEmptyDirData,
			RetryDelay:         o.EvictionRetryDelay,
		},
		DryRun: o.DryRun,
	}, nil
}
