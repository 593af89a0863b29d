package serving

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nodereboot/nodereboot/pkg/version"
)

// BuildInfoName is the metric naming the build of a binary.
const BuildInfoName = "nodereboot_build_info"

// NewRegistry returns the registry every nodereboot binary exports on
// /metrics, before its own metrics: the Go runtime and process collectors
// and nodereboot_build_info.
func NewRegistry(component string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		BuildInfo(component))
	return reg
}

// BuildInfo is the gauge nodereboot_build_info{component, version,
// goversion}, always 1: which binary, built from which version (pkg/version,
// set by the Makefile) with which Go.
func BuildInfo(component string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: BuildInfoName,
		Help: "A metric with a constant '1' value labelled by the binary (component), its version and the Go version it was built with.",
		ConstLabels: prometheus.Labels{"component": component, "version": version.Version,
			"goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}
