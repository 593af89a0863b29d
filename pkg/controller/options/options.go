package options

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	componentbaseconfig "k8s.io/component-base/config"
	cbopts "k8s.io/component-base/config/options"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/drain"
	"github.com/nodereboot/nodereboot/pkg/gates"
	"github.com/nodereboot/nodereboot/pkg/notify"
	"github.com/nodereboot/nodereboot/pkg/serving"
)

// DefaultNamespace is the lease namespace when POD_NAMESPACE is not set.
const DefaultNamespace = "nodereboot-system"

// Client-side rate limits of the API client. client-go's own defaults (5
// requests per second, bursts of 10) put a pipeline step (a patch and two
// events) at 400-600 ms once a rollout has used the burst.
const (
	DefaultKubeAPIQPS   = 50
	DefaultKubeAPIBurst = 100
)

// Options are the controller's command-line options.
type Options struct {
	Kubeconfig     string
	KubeAPIQPS     float32
	KubeAPIBurst   int
	LeaderElection componentbaseconfig.LeaderElectionConfiguration

	RebootConditions []string
	ConditionMinAge  time.Duration
	NodeSelector     string
	MaxConcurrent    int
	// MaxConcurrentControlPlane bounds the control-plane nodes out.
	MaxConcurrentControlPlane int
	DrainTimeout              time.Duration
	DrainGracePeriod          int64
	DeleteEmptyDirData        bool
	OnDrainFailure            string
	DrainFailureBackoff       time.Duration
	RebootTimeout             time.Duration
	PostRebootSoak            time.Duration
	MinRebootInterval         time.Duration
	EvictionRetryDelay        time.Duration
	AllowUnhealthyCluster     bool
	// CordonedByOthers is what to do about selected nodes somebody else
	// cordoned: wait (take nothing while there is one) or reboot.
	CordonedByOthers string
	// PoolLabel and PoolVersionLabel, when set, pause admission while a
	// pool's nodes disagree on the version label or the kubelet version
	// (a pool being upgraded).
	PoolLabel, PoolVersionLabel string
	DryRun                      bool

	// Gates.
	RebootDays             []string
	StartTime, EndTime     string
	TimeZone               string
	BlockingPodSelectors   []string
	PrometheusURL          string
	AlertFilterRegexp      string
	AlertFilterMatchOnly   bool
	AlertFiringOnly        bool
	BlockedRecheck         time.Duration
	PreRebootNodeLabels    []string
	PostRebootNodeLabels   []string
	DrainDelay             time.Duration
	ScaleDownProtection    bool
	ScaleDownProtectionFor time.Duration
	NotifyURLs             []string
	NotifyTemplate         string
	NotifyStepTemplates    map[notify.Step]*string
	NotifyTimeout          time.Duration
	// The settings that may come from a Secret (secrets.go).
	secretSettings

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
	o := &Options{
		KubeAPIQPS:   DefaultKubeAPIQPS,
		KubeAPIBurst: DefaultKubeAPIBurst,
		LeaderElection: componentbaseconfig.LeaderElectionConfiguration{
			LeaderElect:       true,
			LeaseDuration:     metav1.Duration{Duration: 15 * time.Second},
			RenewDeadline:     metav1.Duration{Duration: 10 * time.Second},
			RetryPeriod:       metav1.Duration{Duration: 2 * time.Second},
			ResourceLock:      "leases",
			ResourceName:      contract.ControllerComponent,
			ResourceNamespace: ns,
		},
		RebootConditions:          []string{contract.DefaultConditionType},
		MaxConcurrent:             1,
		MaxConcurrentControlPlane: 1,
		DrainTimeout:              10 * time.Minute,
		DrainGracePeriod:          -1,
		DeleteEmptyDirData:        true,
		OnDrainFailure:            string(decide.DrainFailureUncordon),
		CordonedByOthers:          "reboot",
		DrainFailureBackoff:       30 * time.Minute,
		RebootTimeout:             30 * time.Minute,
		MinRebootInterval:         time.Hour,
		StartTime:                 "00:00",
		EndTime:                   "24:00",
		TimeZone:                  "UTC",
		BlockedRecheck:            time.Minute,
		ScaleDownProtection:       true,
		ScaleDownProtectionFor:    10 * time.Minute,
		NotifyTimeout:             10 * time.Second,
		NotifyStepTemplates:       map[notify.Step]*string{},
		EvictionRetryDelay:        5 * time.Second,
		MetricsBindAddress:        ":8080",
		HealthProbeBindAddress:    ":8081",
		Workers:                   4,
	}
	o.readEnv(getenv)
	return o
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Path to a kubeconfig. Empty: the in-cluster service account.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS,
		"Requests per second the controller sends to the API server, on average (events have a limiter of their own with the same values).")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst,
		"Requests the controller may send to the API server in a burst above --kube-api-qps.")
	cbopts.BindLeaderElectionFlags(&o.LeaderElection, fs)
	fs.StringSliceVar(&o.RebootConditions, "reboot-conditions", o.RebootConditions,
		"Node condition types that, with status True, ask for a reboot (comma-separated).")
	fs.DurationVar(&o.ConditionMinAge, "condition-min-age", o.ConditionMinAge,
		"How long a reboot condition must have been True before the node is queued.")
	fs.StringVar(&o.NodeSelector, "node-selector", o.NodeSelector,
		"Label selector of the nodes to reboot (empty: all). Nodes labelled "+contract.LabelDisabled+"=true are always skipped.")
	fs.IntVar(&o.MaxConcurrent, "max-concurrent", o.MaxConcurrent,
		"Most nodes in the pipeline (cordoned, draining, rebooting, soaking or failed) at any moment.")
	fs.IntVar(&o.MaxConcurrentControlPlane, "max-concurrent-control-plane", o.MaxConcurrentControlPlane,
		"Most control-plane nodes (labelled node-role.kubernetes.io/control-plane) in the pipeline at any moment, within --max-concurrent; 0: never reboot them. One by default, for etcd's quorum.")
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
	fs.StringVar(&o.CordonedByOthers, "cordoned-by-others", o.CordonedByOthers,
		"A selected node somebody else cordoned (an AKS upgrade, a kubectl drain): reboot (take it like any node, leave it cordoned) or wait (take no node while there is one; docs/aks.md).")
	fs.StringVar(&o.PoolLabel, "pool-label", o.PoolLabel,
		"Node label naming a node pool (AKS: kubernetes.azure.com/agentpool). With it, no node is taken while a pool's nodes disagree on --pool-version-label or on the kubelet version (a pool being upgraded).")
	fs.StringVar(&o.PoolVersionLabel, "pool-version-label", o.PoolVersionLabel,
		"Node label holding a pool's node image version (AKS: kubernetes.azure.com/node-image-version); used with --pool-label.")
	fs.BoolVar(&o.DryRun, "dry-run", o.DryRun,
		"Log every decision and record it as a DryRun event; change nothing.")
	fs.StringSliceVar(&o.RebootDays, "reboot-days", o.RebootDays,
		"Days on which the reboot window opens (su,mo,tu,we,th,fr,sa; or sun…sat; or sunday…saturday). Empty: every day.")
	fs.StringVar(&o.StartTime, "start-time", o.StartTime,
		"Time of day (HH:MM or HH:MM:SS, in --time-zone) the reboot window opens. Nodes are taken only inside the window; a node taken inside it finishes after it closes.")
	fs.StringVar(&o.EndTime, "end-time", o.EndTime,
		"Time of day (HH:MM or HH:MM:SS, or 24:00) the reboot window closes; not after --start-time: the window crosses midnight and belongs to the day it opens.")
	fs.StringVar(&o.TimeZone, "time-zone", o.TimeZone,
		"IANA time zone of --start-time and --end-time (e.g. Europe/Berlin), or UTC, or Local.")
	fs.StringArrayVar(&o.BlockingPodSelectors, "blocking-pod-selector", o.BlockingPodSelectors,
		"Label selector of pods that block the reboot of the node they run on (repeatable; any match blocks).")
	fs.StringVar(&o.PrometheusURL, "prometheus-url", o.PrometheusURL,
		"Prometheus server (e.g. http://prometheus.monitoring:9090) whose alerts (the ALERTS series) block reboots while they are active. An unreachable server blocks too.")
	fs.StringVar(&o.AlertFilterRegexp, "alert-filter-regexp", o.AlertFilterRegexp,
		"Alerts whose name matches this regular expression do not block reboots (with --alert-filter-match-only: only they do).")
	fs.BoolVar(&o.AlertFilterMatchOnly, "alert-filter-match-only", o.AlertFilterMatchOnly,
		"Only alerts matching --alert-filter-regexp block reboots.")
	fs.BoolVar(&o.AlertFiringOnly, "alert-firing-only", o.AlertFiringOnly,
		"Only firing alerts block reboots, pending ones do not.")
	fs.DurationVar(&o.BlockedRecheck, "blocked-recheck-interval", o.BlockedRecheck,
		"While a node waits on an alert or on blocking pods, look again this often.")
	fs.StringSliceVar(&o.PreRebootNodeLabels, "pre-reboot-node-labels", o.PreRebootNodeLabels,
		"Labels (key=value, comma-separated) set on a node when it is taken (with the cordon); their earlier values are restored when it leaves the pipeline.")
	fs.StringSliceVar(&o.PostRebootNodeLabels, "post-reboot-node-labels", o.PostRebootNodeLabels,
		"Labels (key=value, comma-separated) set on a node when its reboot completes (with the uncordon); removed while it is in the pipeline again.")
	fs.DurationVar(&o.DrainDelay, "drain-delay", o.DrainDelay,
		"Wait between the cordon and the start of the drain (counts against --drain-timeout).")
	fs.BoolVar(&o.ScaleDownProtection, "scale-down-protection", o.ScaleDownProtection,
		"Annotate a node "+contract.AnnotationScaleDownDisabled+"=true from its cordon until --scale-down-protection-after after its uncordon, so that the Cluster Autoscaler does not remove it meanwhile (only if it was not annotated).")
	fs.DurationVar(&o.ScaleDownProtectionFor, "scale-down-protection-after", o.ScaleDownProtectionFor,
		"How long the scale-down protection stays after a node leaves the pipeline.")
	fs.StringArrayVar(&o.NotifyURLs, "notify-url", o.NotifyURLs,
		"Shoutrrr URL to notify of drains, reboots, uncordons and failures (repeatable), e.g. slack://…, generic+https://example.com/hook.")
	fs.StringVar(&o.NotifyTemplate, "notify-template", o.NotifyTemplate,
		"Go template of every notification, over .Step (drain, reboot, uncordon, failure), .Node, .Reason, .Message, .Time. Empty: a message per step.")
	for _, step := range notify.Steps {
		v := new(string)
		o.NotifyStepTemplates[step] = v
		fs.StringVar(v, "notify-template-"+string(step), "",
			fmt.Sprintf("Go template of the %s notification (overrides --notify-template); default %q.", step, notify.DefaultTemplates[step]))
	}
	o.secretSettings.addFlags(fs)
	fs.DurationVar(&o.NotifyTimeout, "notify-timeout", o.NotifyTimeout,
		"How long sending one notification may take; notifications never hold up a rollout.")
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
	errs = append(errs, o.secretSettings.resolve(os.ReadFile, o.PrometheusURL)...)
	if o.KubeAPIQPS <= 0 {
		bad("kube-api-qps", "must be positive, got %v", o.KubeAPIQPS)
	}
	if o.KubeAPIBurst < 1 {
		bad("kube-api-burst", "must be at least 1, got %d", o.KubeAPIBurst)
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
	if o.MaxConcurrentControlPlane < 0 {
		bad("max-concurrent-control-plane", "must be 0 or more, got %d", o.MaxConcurrentControlPlane)
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
	if o.CordonedByOthers != "wait" && o.CordonedByOthers != "reboot" {
		bad("cordoned-by-others", "must be wait or reboot, got %q", o.CordonedByOthers)
	}
	if o.PoolVersionLabel != "" && o.PoolLabel == "" {
		bad("pool-version-label", "needs --pool-label")
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
	if _, err := o.window(); err != nil {
		var we *gates.WindowError
		flag := "reboot-days"
		if errors.As(err, &we) {
			flag = map[string]string{gates.WindowDays: "reboot-days", gates.WindowStart: "start-time",
				gates.WindowEnd: "end-time", gates.WindowZone: "time-zone"}[we.Flag]
		}
		bad(flag, "%v", err)
	}
	if _, err := gates.NewPodBlocker(o.BlockingPodSelectors); err != nil {
		bad("blocking-pod-selector", "%v", err)
	}
	if o.PrometheusURL != "" {
		if u, err := url.Parse(o.PrometheusURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("prometheus-url", "want an http:// or https:// URL, got %q", o.PrometheusURL)
		}
	}
	if _, err := regexp.Compile(o.AlertFilterRegexp); err != nil {
		bad("alert-filter-regexp", "%v", err)
	}
	if o.AlertFilterMatchOnly && o.AlertFilterRegexp == "" {
		bad("alert-filter-match-only", "needs --alert-filter-regexp")
	}
	if o.BlockedRecheck <= 0 {
		bad("blocked-recheck-interval", "must be positive, got %s", o.BlockedRecheck)
	}
	pre, err := parseLabels(o.PreRebootNodeLabels)
	if err != nil {
		bad("pre-reboot-node-labels", "%v", err)
	}
	post, err := parseLabels(o.PostRebootNodeLabels)
	if err != nil {
		bad("post-reboot-node-labels", "%v", err)
	}
	for k := range pre {
		if strings.HasPrefix(k, contract.Prefix) {
			bad("pre-reboot-node-labels", "%s: the %s labels are nodereboot's own", k, contract.Prefix)
		}
	}
	for k := range post {
		if strings.HasPrefix(k, contract.Prefix) {
			bad("post-reboot-node-labels", "%s: the %s labels are nodereboot's own", k, contract.Prefix)
		}
	}
	if o.DrainDelay < 0 {
		bad("drain-delay", "must not be negative, got %s", o.DrainDelay)
	} else if o.DrainDelay >= o.DrainTimeout && o.DrainTimeout > 0 {
		bad("drain-delay", "must be less than --drain-timeout (%s), which counts from the cordon, got %s", o.DrainTimeout, o.DrainDelay)
	}
	if o.NotifyTimeout <= 0 {
		bad("notify-timeout", "must be positive, got %s", o.NotifyTimeout)
	}
	if _, err := notify.New(o.NotifyConfig(nil)); err != nil {
		var te *notify.TemplateError
		switch {
		case errors.As(err, &te) && te.Step == "":
			bad("notify-template", "%v", err)
		case errors.As(err, &te):
			bad("notify-template-"+string(te.Step), "%v", err)
		default:
			bad("notify-url", "%v", err)
		}
	}
	if o.ScaleDownProtectionFor < 0 {
		bad("scale-down-protection-after", "must not be negative, got %s", o.ScaleDownProtectionFor)
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

// prometheusURLOrSecret is --prometheus-url, or the URL Validate read from
// $NODEREBOOT_PROMETHEUS_URL or --prometheus-url-file.
func (o *Options) prometheusURLOrSecret() string {
	if o.PrometheusURL != "" {
		return o.PrometheusURL
	}
	return o.secretSettings.prometheusURL
}

// NotifyConfig is the configuration of the notifications; onResult counts
// them.
func (o *Options) NotifyConfig(onResult func(string)) notify.Config {
	steps := map[notify.Step]string{}
	for step, v := range o.NotifyStepTemplates {
		if v != nil && *v != "" {
			steps[step] = *v
		}
	}
	urls := append(append([]string(nil), o.NotifyURLs...), o.secretSettings.notifyURLs...)
	return notify.Config{URLs: urls, Template: o.NotifyTemplate, StepTemplates: steps,
		Timeout: o.NotifyTimeout, OnResult: onResult}
}

func (o *Options) window() (*gates.Window, error) {
	return gates.ParseWindow(o.RebootDays, o.StartTime, o.EndTime, o.TimeZone)
}

// parseLabels parses key=value items; keys and values must be valid label
// keys and values.
func parseLabels(items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(strings.TrimSpace(it), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want key=value", it)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("%q: invalid label key: %s", it, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("%q: invalid label value: %s", it, strings.Join(errs, "; "))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%q: label %s given twice", it, k)
		}
		out[k] = v
	}
	return out, nil
}

// Config converts validated options to the controller's configuration.
func (o *Options) Config() (controller.Config, error) {
	win, err := o.window()
	if err != nil {
		return controller.Config{}, err
	}
	blocker, err := gates.NewPodBlocker(o.BlockingPodSelectors)
	if err != nil {
		return controller.Config{}, fmt.Errorf("--blocking-pod-selector: %w", err)
	}
	var alerts *gates.AlertChecker
	if promURL := o.prometheusURLOrSecret(); promURL != "" {
		alerts = &gates.AlertChecker{URL: promURL, MatchOnly: o.AlertFilterMatchOnly, FiringOnly: o.AlertFiringOnly}
		if o.AlertFilterRegexp != "" {
			if alerts.Filter, err = regexp.Compile(o.AlertFilterRegexp); err != nil {
				return controller.Config{}, fmt.Errorf("--alert-filter-regexp: %w", err)
			}
		}
	}
	pre, err := parseLabels(o.PreRebootNodeLabels)
	if err != nil {
		return controller.Config{}, fmt.Errorf("--pre-reboot-node-labels: %w", err)
	}
	post, err := parseLabels(o.PostRebootNodeLabels)
	if err != nil {
		return controller.Config{}, fmt.Errorf("--post-reboot-node-labels: %w", err)
	}
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
			Conditions:                conds,
			ConditionMinAge:           o.ConditionMinAge,
			Selector:                  sel,
			MaxConcurrent:             o.MaxConcurrent,
			MaxConcurrentControlPlane: o.MaxConcurrentControlPlane,
			DrainTimeout:              o.DrainTimeout,
			OnDrainFailure:            decide.DrainFailurePolicy(o.OnDrainFailure),
			WaitForOthersCordons:      o.CordonedByOthers == "wait",
			PoolLabel:                 o.PoolLabel,
			PoolVersionLabel:          o.PoolVersionLabel,
			DrainFailureBackoff:       o.DrainFailureBackoff,
			RebootTimeout:             o.RebootTimeout,
			PostRebootSoak:            o.PostRebootSoak,
			MinRebootInterval:         o.MinRebootInterval,
			AllowUnhealthyCluster:     o.AllowUnhealthyCluster,
			Window:                    win,
			DrainDelay:                o.DrainDelay,
			PreRebootLabels:           pre,
			PostRebootLabels:          post,
			ScaleDownProtection:       o.ScaleDownProtection,
			ScaleDownProtectionAfter:  o.ScaleDownProtectionFor,
		},
		Drain: drain.Options{
			GracePeriodSeconds: o.DrainGracePeriod,
			DeleteEmptyDirData: o.DeleteEmptyDirData,
			RetryDelay:         o.EvictionRetryDelay,
		},
		DryRun:          o.DryRun,
		BlockingPods:    blocker,
		Alerts:          alerts,
		PauseNamespace:  o.LeaderElection.ResourceNamespace,
		Namespace:       o.LeaderElection.ResourceNamespace,
		RecheckInterval: o.BlockedRecheck,
	}, nil
}
