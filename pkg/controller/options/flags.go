package options

import (
	"fmt"

	"github.com/spf13/pflag"
	cbopts "k8s.io/component-base/config/options"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/notify"
)

// AddFlags binds the options to fs, one group of flags per concern.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.addClientFlags(fs)
	o.addSelectionFlags(fs)
	o.addBudgetFlags(fs)
	o.addPipelineFlags(fs)
	o.addReleaseFlags(fs)
	o.addGateFlags(fs)
	o.addNodeLabelFlags(fs)
	o.addNotifyFlags(fs)
	o.addServingFlags(fs)
}

// addClientFlags binds the flags of the API client and the leader election.
func (o *Options) addClientFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Path to a kubeconfig. Empty: the in-cluster service account.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS,
		"Requests per second the controller sends to the API server, on average (events have a limiter of their own with the same values).")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst,
		"Requests the controller may send to the API server in a burst above --kube-api-qps.")
	cbopts.BindLeaderElectionFlags(&o.LeaderElection, fs)
}

// addSelectionFlags binds the flags of which nodes are rebooted, how many at a time and when none is taken.
func (o *Options) addSelectionFlags(fs *pflag.FlagSet) {
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
}

// addPipelineFlags binds the flags of the steps of a reboot (drain, reboot, soak) and their failures.
func (o *Options) addPipelineFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", o.DrainTimeout,
		"How long a drain may take, from the cordon; then --on-drain-failure applies.")
	fs.DurationVar(&o.DrainDelay, "drain-delay", o.DrainDelay,
		"Wait between the cordon and the start of the drain (counts against --drain-timeout).")
	fs.Int64Var(&o.DrainGracePeriod, "drain-grace-period", o.DrainGracePeriod,
		"Termination grace period in seconds for evicted pods; -1: each pod's own.")
	fs.BoolVar(&o.DeleteEmptyDirData, "delete-emptydir-data", o.DeleteEmptyDirData,
		"Evict pods with emptyDir volumes (their data is lost). When false, such pods block the drain.")
	fs.DurationVar(&o.EvictionRetryDelay, "eviction-retry-delay", o.EvictionRetryDelay,
		"Delay before evicting a pod again after a refusal (PodDisruptionBudget) or an error.")
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
}

// addGateFlags binds the flags of the gates: the reboot window, blocking pods and Prometheus alerts.
func (o *Options) addGateFlags(fs *pflag.FlagSet) {
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
}

// addNodeLabelFlags binds the flags of what is written on a node in the
// pipeline: labels, the scale-down and Karpenter protections, the lifecycle
// conditions.
func (o *Options) addNodeLabelFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.PreRebootNodeLabels, "pre-reboot-node-labels", o.PreRebootNodeLabels,
		"Labels (key=value, comma-separated) set on a node when it is taken (with the cordon); their earlier values are restored when it leaves the pipeline.")
	fs.StringSliceVar(&o.PostRebootNodeLabels, "post-reboot-node-labels", o.PostRebootNodeLabels,
		"Labels (key=value, comma-separated) set on a node when its reboot completes (with the uncordon); removed while it is in the pipeline again.")
	fs.BoolVar(&o.ScaleDownProtection, "scale-down-protection", o.ScaleDownProtection,
		"Annotate a node "+contract.AnnotationScaleDownDisabled+"=true from its cordon until --scale-down-protection-after after its uncordon, so that the Cluster Autoscaler does not remove it meanwhile (only if it was not annotated).")
	fs.DurationVar(&o.ScaleDownProtectionFor, "scale-down-protection-after", o.ScaleDownProtectionFor,
		"How long the scale-down protection stays after a node leaves the pipeline.")
	fs.BoolVar(&o.KarpenterProtection, "karpenter-protection", o.KarpenterProtection,
		"Annotate a node "+contract.AnnotationDoNotDisrupt+"=true from its cordon until it leaves the pipeline, so that Karpenter does not disrupt (consolidate) it meanwhile (only if the node does not carry the annotation; "+contract.AnnotationDoNotDisruptByUs+" records that it is ours).")
	fs.BoolVar(&o.LifecycleConditions, "lifecycle-conditions", o.LifecycleConditions,
		"Write the node lifecycle conditions of KEP-5683 (MaintenancePlanned, DrainInProgress, Drained, MaintenanceInProgress) on nodes/status as a node moves through the pipeline; needs RBAC patch on nodes/status. Informational: never read to decide a step.")
}

// addNotifyFlags binds the flags of the notifications.
func (o *Options) addNotifyFlags(fs *pflag.FlagSet) {
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
}

// addServingFlags binds the flags of the metrics and probe servers, and the hidden test hook.
func (o *Options) addServingFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"Address of /metrics ([host]:port; 0 disables).")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress,
		"Address of /healthz and /readyz ([host]:port; 0 disables); equal to --metrics-bind-address: one server serves all three paths.")
	fs.DurationVar(&o.TestingClockOffset, "testing-clock-offset", o.TestingClockOffset,
		"Testing only: shift the controller's clock by this much (clock-skew fault tests).")
	_ = fs.MarkHidden("testing-clock-offset")
}
