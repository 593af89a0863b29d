package options

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	componentbaseconfig "k8s.io/component-base/config"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/notify"
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
	// The release gate (release.go).
	releaseOptions
	MinRebootInterval     time.Duration
	EvictionRetryDelay    time.Duration
	AllowUnhealthyCluster bool
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
	LifecycleConditions    bool
	KarpenterProtection    bool
	NotifyURLs             []string
	NotifyTemplate         string
	NotifyStepTemplates    map[notify.Step]*string
	NotifyTimeout          time.Duration
	// The settings that may come from a Secret (secrets.go).
	secretSettings
	// The budgets per topology domain and per pool (budgets.go).
	budgetOptions

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
		LifecycleConditions:       true,
		KarpenterProtection:       true,
		NotifyTimeout:             10 * time.Second,
		NotifyStepTemplates:       map[notify.Step]*string{},
		EvictionRetryDelay:        5 * time.Second,
		MetricsBindAddress:        ":8080",
		HealthProbeBindAddress:    ":8081",
		Workers:                   4,
		budgetOptions:             defaultBudgetOptions(),
		releaseOptions:            defaultReleaseOptions(),
	}
	o.readEnv(getenv)
	return o
}
