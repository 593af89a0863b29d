package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/notify"
)

// Reboot results, the label values of nodereboot_reboots_total.
const (
	ResultCompleted   = "completed"
	ResultTimeout     = "timeout"
	ResultDrainFailed = "drain_failed"
	// ResultBlocked: the node was drained, but a gate (blocking pods,
	// alerts) kept its reboot from being authorized until --drain-timeout.
	ResultBlocked = "blocked"
	// ResultReleaseTimeout: the node came back but did not pass the
	// release gate within --release-timeout.
	ResultReleaseTimeout = "release_timeout"
)

// Metrics are the controller's Prometheus metrics. Create them with
// NewMetrics on a registry the caller owns.
type Metrics struct {
	// Nodes counts nodes per pipeline state (and Queued, Invalid).
	Nodes *prometheus.GaugeVec
	// Reboots counts finished pipelines by result.
	Reboots *prometheus.CounterVec
	// DrainDuration observes drains, from the take to the authorization.
	DrainDuration prometheus.Histogram
	// RebootDuration observes reboots, from the authorization to the new
	// boot ID being Ready.
	RebootDuration prometheus.Histogram
	// Evictions counts eviction requests by result.
	Evictions *prometheus.CounterVec
	// Blocked is 1 for the reason admission is blocked, 0 otherwise.
	Blocked *prometheus.GaugeVec
	// InvalidAnnotations counts resets of invalid annotations.
	InvalidAnnotations prometheus.Counter
	// IsLeader is 1 while this replica leads.
	IsLeader prometheus.Gauge
	// Notifications counts notifications by result.
	Notifications *prometheus.CounterVec
	// WitnessMismatch counts reboots one witness saw and the other did
	// not (witness.go).
	WitnessMismatch *prometheus.CounterVec
}

// Label values of nodereboot_nodes besides the states.
const (
	NodesQueued  = "Queued"
	NodesInvalid = "Invalid"
)

var gaugeStates = []string{NodesQueued, string(contract.StateDraining), string(contract.StateAuthorized),
	string(contract.StateRebooted), string(contract.StateFailed), NodesInvalid}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nodereboot_nodes",
			Help: "Nodes per state: Queued (waiting for a slot), Draining, Authorized, Rebooted, Failed, Invalid (unknown state)."}, []string{"state"}),
		Reboots: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nodereboot_reboots_total",
			Help: "Node reboot pipelines ended, by result: completed, timeout, drain_failed, blocked, release_timeout."}, []string{"result"}),
		DrainDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "nodereboot_drain_duration_seconds",
			Help:    "Time from taking a node to authorizing its reboot.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		RebootDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "nodereboot_reboot_duration_seconds",
			Help:    "Time from authorizing a reboot to the node being Ready with a new boot ID.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		Evictions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nodereboot_evictions_total",
			Help: "Eviction requests, by result: evicted, blocked (429), gone (404), error."}, []string{"result"}),
		Blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nodereboot_reboot_blocked",
			Help: "1 while a gate blocks a reboot for the reason (NodeNotReady, Paused, OutsideRebootWindow, BlockingPod, ActiveAlerts, PrometheusUnavailable, NodeCordoned, DomainBudget, PoolBudget), else 0."}, []string{"reason"}),
		InvalidAnnotations: prometheus.NewCounter(prometheus.CounterOpts{Name: "nodereboot_invalid_annotations_total",
			Help: "Invalid nodereboot.io annotations reset to safe values."}),
		IsLeader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "nodereboot_is_leader",
			Help: "1 while this replica is the leader."}),
		Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nodereboot_notifications_total",
			Help: "Notifications (--notify-url), by result: sent, failed (refused, timed out), dropped (queue full)."}, []string{"result"}),
	}
	m.WitnessMismatch = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nodereboot_reboot_witness_mismatch_total",
		Help: "Reboots seen by one witness only: kubelet_event_missing (the controller saw the new boot ID of a reboot it authorized, no kubelet Rebooted event named it), unexpected_reboot (a kubelet Rebooted event named a boot the controller did not see as the end of a reboot it authorized)."},
		[]string{"witness"})
	reg.MustRegister(m.Nodes, m.Reboots, m.DrainDuration, m.RebootDuration, m.Evictions, m.Blocked, m.InvalidAnnotations, m.IsLeader, m.Notifications, m.WitnessMismatch)
	for _, w := range []string{WitnessKubeletEventMissing, WitnessUnexpectedReboot} {
		m.WitnessMismatch.WithLabelValues(w)
	}
	for _, r := range notify.Results {
		m.Notifications.WithLabelValues(r)
	}
	for _, s := range gaugeStates {
		m.Nodes.WithLabelValues(s)
	}
	for _, r := range []string{ResultCompleted, ResultTimeout, ResultDrainFailed, ResultBlocked, ResultReleaseTimeout} {
		m.Reboots.WithLabelValues(r)
	}
	for _, r := range decide.BlockedReasons {
		m.Blocked.WithLabelValues(r)
	}
	return m
}
