package options

// The release gate's flags (docs/gates.md#release-gate).

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/nodereboot/nodereboot/pkg/cli"
	"github.com/nodereboot/nodereboot/pkg/controller"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// releaseOptions are the flags of the release gate.
type releaseOptions struct {
	ReleaseDaemonSetPods bool
	ReleaseConditions    []string
	ReleaseTaints        []string
	ReleaseTimeout       time.Duration
	// TestingWitnessGrace shortens the wait of the reboot witnesses (hidden
	// flag --testing-witness-grace, for the e2e tests only).
	TestingWitnessGrace time.Duration
}

// DefaultReleaseTaints are --release-taints' default: node-readiness-
// controller's taints, and the taints of a node whose network or cloud
// provider is not initialized.
var DefaultReleaseTaints = []string{"readiness.k8s.io/*", "node.kubernetes.io/network-unavailable",
	"node.cloudprovider.kubernetes.io/uninitialized"}

func defaultReleaseOptions() releaseOptions {
	return releaseOptions{ReleaseDaemonSetPods: true, ReleaseTimeout: 10 * time.Minute,
		ReleaseTaints: append([]string(nil), DefaultReleaseTaints...)}
}

// addReleaseFlags binds the flags of the release gate.
func (o *releaseOptions) addReleaseFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.ReleaseDaemonSetPods, "release-daemonset-pods", o.ReleaseDaemonSetPods,
		"Before a rebooted node is uncordoned and the next one taken, every DaemonSet pod bound to it must be Ready.")
	fs.StringSliceVar(&o.ReleaseConditions, "release-conditions", o.ReleaseConditions,
		"Node conditions (Type=Status, comma-separated, Status True, False or Unknown) a rebooted node must show before it is released, e.g. NetworkUnavailable=False. An absent condition has no status.")
	fs.StringSliceVar(&o.ReleaseTaints, "release-taints", o.ReleaseTaints,
		"Taint keys (comma-separated; a trailing * matches a prefix) that must be gone from a rebooted node before it is released. Empty: none.")
	fs.DurationVar(&o.ReleaseTimeout, "release-timeout", o.ReleaseTimeout,
		"How long a rebooted node, from being seen Ready with its new boot ID, may take to pass the release gate (--release-daemonset-pods, --release-conditions, --release-taints); then it is marked Failed and keeps its slot. 0: no release gate.")
	fs.DurationVar(&o.TestingWitnessGrace, "testing-witness-grace", o.TestingWitnessGrace,
		"Testing only: how long a reboot seen by boot ID and the kubelet's Rebooted event wait for each other (default 2m).")
	_ = fs.MarkHidden("testing-witness-grace")
}

// completeRelease checks and converts the release gate (and the witnesses'
// grace, into c).
func (o *releaseOptions) completeRelease(c *controller.Config, errs *cli.FlagErrors) {
	d := &c.Decide
	if o.TestingWitnessGrace < 0 {
		errs.Add("testing-witness-grace", "must not be negative, got %s", o.TestingWitnessGrace)
	}
	c.WitnessGrace = o.TestingWitnessGrace
	wants, err := decide.ParseConditionWants(o.ReleaseConditions)
	errs.Check("release-conditions", err)
	errs.Check("release-taints", decide.ValidateTaintPatterns(o.ReleaseTaints))
	if o.ReleaseTimeout < 0 {
		errs.Add("release-timeout", "must not be negative, got %s", o.ReleaseTimeout)
	}
	d.Release = decide.ReleaseGate{DaemonSetPods: o.ReleaseDaemonSetPods, Conditions: wants,
		Taints: append([]string(nil), o.ReleaseTaints...), Timeout: o.ReleaseTimeout}
}
