package options

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	componentbaseconfig "k8s.io/component-base/config"

	"github.com/nodereboot/nodereboot/pkg/cli"
	"github.com/nodereboot/nodereboot/pkg/controller"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/drain"
	"github.com/nodereboot/nodereboot/pkg/gates"
	"github.com/nodereboot/nodereboot/pkg/gates/window"
	"github.com/nodereboot/nodereboot/pkg/notify"
	"github.com/nodereboot/nodereboot/pkg/serving"
)

// Config is the controller process's configuration: what Complete made of
// the options, every flag parsed once.
type Config struct {
	// Controller is the controller's own configuration (its Notifier and
	// Identity are left to the caller).
	Controller controller.Config
	// Notifier sends the notifications (--notify-url…); nil without URLs.
	Notifier *notify.Sender
	// Kubeconfig, QPS and Burst configure the API client.
	Kubeconfig string
	QPS        float32
	Burst      int
	// LeaderElection is the validated leader election configuration.
	LeaderElection componentbaseconfig.LeaderElectionConfiguration
	// MetricsBindAddress and HealthProbeBindAddress are the servers'
	// addresses ("" or "0": disabled).
	MetricsBindAddress     string
	HealthProbeBindAddress string
	// Workers is the number of queue workers.
	Workers int
	// TestingClockOffset shifts the controller's clock (fault tests only).
	TestingClockOffset time.Duration
}

// Complete checks the options and converts them to the configuration in one
// pass. The error lists every bad flag, one a line, each naming its flag
// (or the environment variable it came from).
func (o *Options) Complete() (*Config, error) {
	var errs cli.FlagErrors
	errs.Append(o.secretSettings.resolve(os.ReadFile, o.PrometheusURL)...)
	cfg := &Config{
		Kubeconfig:             o.Kubeconfig,
		QPS:                    o.KubeAPIQPS,
		Burst:                  o.KubeAPIBurst,
		LeaderElection:         o.LeaderElection,
		MetricsBindAddress:     o.MetricsBindAddress,
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		Workers:                o.Workers,
		TestingClockOffset:     o.TestingClockOffset,
	}
	o.checkClient(&errs)
	o.checkServing(&errs)
	cfg.Controller = controller.Config{
		DryRun:          o.DryRun,
		PauseNamespace:  o.LeaderElection.ResourceNamespace,
		Namespace:       o.LeaderElection.ResourceNamespace,
		RecheckInterval: o.BlockedRecheck,
		Drain: drain.Options{
			GracePeriodSeconds: o.DrainGracePeriod,
			DeleteEmptyDirData: o.DeleteEmptyDirData,
			RetryDelay:         o.EvictionRetryDelay,
		},
	}
	d := &cfg.Controller.Decide
	o.completeSelection(d, &errs)
	o.completeBudgets(d, &errs)
	o.completePipeline(d, &errs)
	o.completeRelease(&cfg.Controller, &errs)
	o.completeNodeLabels(d, &errs)
	d.Window = o.completeWindow(&errs)
	cfg.Controller.BlockingPods, cfg.Controller.Alerts = o.completeGates(&errs)
	cfg.Notifier = o.completeNotify(&errs)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Validate reports Complete's errors, for callers that only check a command
// line (the manifests' tests).
func (o *Options) Validate() error {
	_, err := o.Complete()
	return err
}

// durationFlag is a duration flag's name and value.
type durationFlag struct {
	name  string
	value time.Duration
}

// completeSelection checks and converts which nodes are taken, and how many.
func (o *Options) completeSelection(d *decide.Config, errs *cli.FlagErrors) {
	if len(o.RebootConditions) == 0 {
		errs.Add("reboot-conditions", "must name at least one condition type")
	}
	for _, c := range o.RebootConditions {
		if strings.TrimSpace(c) == "" || strings.ContainsAny(c, " \t") {
			errs.Add("reboot-conditions", "invalid condition type %q", c)
		}
		d.Conditions = append(d.Conditions, strings.TrimSpace(c))
	}
	if o.ConditionMinAge < 0 {
		errs.Add("condition-min-age", "must not be negative, got %s", o.ConditionMinAge)
	}
	if o.NodeSelector != "" {
		sel, err := labels.Parse(o.NodeSelector)
		errs.Check("node-selector", err)
		d.Selector = sel
	}
	if o.MaxConcurrentControlPlane < 0 {
		errs.Add("max-concurrent-control-plane", "must be 0 or more, got %d", o.MaxConcurrentControlPlane)
	}
	if o.MaxConcurrent < 1 {
		errs.Add("max-concurrent", "must be at least 1, got %d", o.MaxConcurrent)
	}
	if o.CordonedByOthers != "wait" && o.CordonedByOthers != "reboot" {
		errs.Add("cordoned-by-others", "must be wait or reboot, got %q", o.CordonedByOthers)
	}
	if o.PoolVersionLabel != "" && o.PoolLabel == "" {
		errs.Add("pool-version-label", "needs --pool-label")
	}
	d.ConditionMinAge = o.ConditionMinAge
	d.MaxConcurrent = o.MaxConcurrent
	d.MaxConcurrentControlPlane = o.MaxConcurrentControlPlane
	d.AllowUnhealthyCluster = o.AllowUnhealthyCluster
	d.WaitForOthersCordons = o.CordonedByOthers == "wait"
	d.PoolLabel, d.PoolVersionLabel = o.PoolLabel, o.PoolVersionLabel
}

// completePipeline checks and converts the steps' timings and failure
// policy.
func (o *Options) completePipeline(d *decide.Config, errs *cli.FlagErrors) {
	for _, f := range []durationFlag{{"drain-timeout", o.DrainTimeout}, {"reboot-timeout", o.RebootTimeout},
		{"eviction-retry-delay", o.EvictionRetryDelay}} {
		if f.value <= 0 {
			errs.Add(f.name, "must be positive, got %s", f.value)
		}
	}
	for _, f := range []durationFlag{{"drain-failure-backoff", o.DrainFailureBackoff}, {"post-reboot-soak", o.PostRebootSoak},
		{"min-reboot-interval", o.MinRebootInterval}, {"scale-down-protection-after", o.ScaleDownProtectionFor}} {
		if f.value < 0 {
			errs.Add(f.name, "must not be negative, got %s", f.value)
		}
	}
	if o.DrainGracePeriod < -1 {
		errs.Add("drain-grace-period", "must be -1 (each pod's own) or a number of seconds >= 0, got %d", o.DrainGracePeriod)
	}
	switch p := decide.DrainFailurePolicy(o.OnDrainFailure); p {
	case decide.DrainFailureUncordon, decide.DrainFailureHold, decide.DrainFailureReboot:
		d.OnDrainFailure = p
	default:
		errs.Add("on-drain-failure", "must be uncordon, hold or reboot, got %q", o.OnDrainFailure)
	}
	if o.DrainDelay < 0 {
		errs.Add("drain-delay", "must not be negative, got %s", o.DrainDelay)
	} else if o.DrainDelay >= o.DrainTimeout && o.DrainTimeout > 0 {
		errs.Add("drain-delay", "must be less than --drain-timeout (%s), which counts from the cordon, got %s", o.DrainTimeout, o.DrainDelay)
	}
	d.DrainTimeout = o.DrainTimeout
	d.DrainDelay = o.DrainDelay
	d.DrainFailureBackoff = o.DrainFailureBackoff
	d.RebootTimeout = o.RebootTimeout
	d.PostRebootSoak = o.PostRebootSoak
	d.MinRebootInterval = o.MinRebootInterval
}

// completeNodeLabels checks and converts the labels written on a node in the
// pipeline, the scale-down and Karpenter protections and the lifecycle
// conditions.
func (o *Options) completeNodeLabels(d *decide.Config, errs *cli.FlagErrors) {
	d.PreRebootLabels = nodeLabels("pre-reboot-node-labels", o.PreRebootNodeLabels, errs)
	d.PostRebootLabels = nodeLabels("post-reboot-node-labels", o.PostRebootNodeLabels, errs)
	d.ScaleDownProtection = o.ScaleDownProtection
	d.ScaleDownProtectionAfter = o.ScaleDownProtectionFor
	d.LifecycleConditions = o.LifecycleConditions
	d.KarpenterProtection = o.KarpenterProtection
}

// windowFlags names the flag of each part of the reboot window.
var windowFlags = map[string]string{window.Days: "reboot-days", window.Start: "start-time",
	window.End: "end-time", window.Zone: "time-zone"}

// completeWindow parses the reboot window (nil: always open).
func (o *Options) completeWindow(errs *cli.FlagErrors) *window.Window {
	win, err := window.Parse(o.RebootDays, o.StartTime, o.EndTime, o.TimeZone)
	if err != nil {
		var we *window.Error
		flag := "reboot-days"
		if errors.As(err, &we) {
			flag = windowFlags[we.Flag]
		}
		errs.Add(flag, "%v", err)
	}
	return win
}

// completeGates parses the blocking pods and the alert gate (nil: none).
func (o *Options) completeGates(errs *cli.FlagErrors) (*gates.PodBlocker, *gates.AlertChecker) {
	blocker, err := gates.NewPodBlocker(o.BlockingPodSelectors)
	errs.Check("blocking-pod-selector", err)
	if o.PrometheusURL != "" && !httpURL(o.PrometheusURL) {
		errs.Add("prometheus-url", "want an http:// or https:// URL, got %q", o.PrometheusURL)
	}
	filter, err := regexp.Compile(o.AlertFilterRegexp)
	errs.Check("alert-filter-regexp", err)
	if o.AlertFilterMatchOnly && o.AlertFilterRegexp == "" {
		errs.Add("alert-filter-match-only", "needs --alert-filter-regexp")
	}
	if o.BlockedRecheck <= 0 {
		errs.Add("blocked-recheck-interval", "must be positive, got %s", o.BlockedRecheck)
	}
	promURL := o.prometheusURLOrSecret()
	if promURL == "" {
		return blocker, nil
	}
	alerts := &gates.AlertChecker{URL: promURL, MatchOnly: o.AlertFilterMatchOnly, FiringOnly: o.AlertFiringOnly}
	if o.AlertFilterRegexp != "" {
		alerts.Filter = filter
	}
	return blocker, alerts
}

// completeNotify builds the notification sender (nil without URLs).
func (o *Options) completeNotify(errs *cli.FlagErrors) *notify.Sender {
	if o.NotifyTimeout <= 0 {
		errs.Add("notify-timeout", "must be positive, got %s", o.NotifyTimeout)
	}
	sender, err := notify.New(o.NotifyConfig(nil))
	if err != nil {
		var te *notify.TemplateError
		switch {
		case errors.As(err, &te) && te.Step == "":
			errs.Add("notify-template", "%v", err)
		case errors.As(err, &te):
			errs.Add("notify-template-"+string(te.Step), "%v", err)
		default:
			errs.Add("notify-url", "%v", err)
		}
	}
	return sender
}

// checkClient checks the API client's rate limits and the leader election
// (component-base's validation, with nodereboot's one lock kind).
func (o *Options) checkClient(errs *cli.FlagErrors) {
	if o.KubeAPIQPS <= 0 {
		errs.Add("kube-api-qps", "must be positive, got %v", o.KubeAPIQPS)
	}
	if o.KubeAPIBurst < 1 {
		errs.Add("kube-api-burst", "must be at least 1, got %d", o.KubeAPIBurst)
	}
	errs.Append(leaderElectionErrors(&o.LeaderElection)...)
}

// checkServing checks the servers' addresses and the number of workers.
func (o *Options) checkServing(errs *cli.FlagErrors) {
	errs.Check("metrics-bind-address", serving.ValidateAddress(o.MetricsBindAddress))
	errs.Check("health-probe-bind-address", serving.ValidateAddress(o.HealthProbeBindAddress))
	if o.Workers < 1 {
		errs.Append(fmt.Errorf("workers must be at least 1, got %d", o.Workers))
	}
}
