package detector

import (
	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
)

// Error kinds, the values of the kind label of nodereboot_detector_errors_total.
const (
	// ErrorConditionWrite: a patch of the node condition failed.
	ErrorConditionWrite = "condition_write"
	// ErrorAnnotationWrite: a patch of nodereboot.io/rebooting failed.
	ErrorAnnotationWrite = "annotation_write"
	// ErrorInvalidAnnotation: a distinct unusable value of
	// nodereboot.io/reboot-authorized was seen.
	ErrorInvalidAnnotation = "invalid_annotation"
	// ErrorReboot: a reboot request failed.
	ErrorReboot = "reboot"
	// ErrorSentinel: an observation was Unknown (sentinel unreadable,
	// sentinel command failed).
	ErrorSentinel = "sentinel"
)

// ErrorKinds lists every kind, all exported from the start at 0.
var ErrorKinds = []string{ErrorConditionWrite, ErrorAnnotationWrite, ErrorInvalidAnnotation, ErrorReboot, ErrorSentinel}

// Gauge values of nodereboot_detector_reboot_required.
const (
	gaugeRequired    = 1
	gaugeNotRequired = 0
	gaugeUnknown     = -1
)

// metrics are the detector's Prometheus metrics, in a registry it owns.
type metrics struct {
	rebootRequired  prometheus.Gauge
	rebootsIssued   prometheus.Counter
	errors          *prometheus.CounterVec
	conditionWrites prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, detection bool) *metrics {
	m := &metrics{
		rebootRequired: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nodereboot_detector_reboot_required",
			Help: "Whether this node needs a reboot: 1 required, 0 not required, -1 unknown (sentinel unreadable, sentinel command failed). Absent with --detection=false.",
		}),
		rebootsIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodereboot_detector_reboots_issued_total",
			Help: "Reboot requests that the reboot method accepted.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodereboot_detector_errors_total",
			Help: "Errors by kind: condition_write, annotation_write, invalid_annotation, reboot, sentinel.",
		}, []string{"kind"}),
		conditionWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodereboot_detector_condition_writes_total",
			Help: "Successful patches of the node condition (transitions, changed messages and heartbeats).",
		}),
	}
	for _, k := range ErrorKinds {
		m.errors.WithLabelValues(k)
	}
	reg.MustRegister(m.rebootsIssued, m.errors)
	if detection {
		m.rebootRequired.Set(gaugeUnknown)
		reg.MustRegister(m.rebootRequired, m.conditionWrites)
	}
	return m
}

func (m *metrics) observed(s v1.ConditionStatus) {
	switch s {
	case v1.ConditionTrue:
		m.rebootRequired.Set(gaugeRequired)
	case v1.ConditionFalse:
		m.rebootRequired.Set(gaugeNotRequired)
	default:
		m.rebootRequired.Set(gaugeUnknown)
		m.errors.WithLabelValues(ErrorSentinel).Inc()
	}
}

func (m *metrics) error(kind string) { m.errors.WithLabelValues(kind).Inc() }
