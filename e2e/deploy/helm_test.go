package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/nodereboot/nodereboot/e2e/framework"
)

// nonDefaultValues switch on every option of the chart and change flags of
// both binaries.
const nonDefaultValues = `
image:
  repository: registry.example.com/mirror/nodereboot
  tag: v9.9.9
imagePullSecrets:
  - name: mirror-credentials
namespace:
  create: true
detector:
  flags:
    reboot-method: signal
    kube-api-qps: 7.5
    resync-period: 2m
    heartbeat-period: 10m
    health-probe-bind-address: ":9091"
    metrics-bind-address: ":9090"
    v: 2
  extraArgs: ["--vmodule=reporter=4"]
  containerSecurityContext:
    appArmorProfile:
      type: Unconfined
  podAnnotations:
    example.com/team: platform
  resources:
    requests: {cpu: 10m, memory: 40Mi}
    limits: {memory: 100Mi}
controller:
  replicas: 3
  flags:
    max-concurrent: 2
    max-concurrent-per-domain: 1
    one-domain-at-a-time: true
    pool-budget: ["gpu:1:example.com/pool in (gpu,gpu-large)", "spot:2:spot=true"]
    reboot-conditions: [RebootRequired, KernelUpdateRequired]
    node-selector: nodereboot.io/pool=blue
    drain-timeout: 20m
    drain-grace-period: 60
    on-drain-failure: hold
    post-reboot-soak: 2m
    leader-elect-resource-name: nodereboot-blue
    reboot-days: [sa, su]
    start-time: "22:00"
    end-time: "04:00"
    time-zone: Europe/Berlin
    # Items with commas: one flag each.
    blocking-pod-selector: ["app=batch,tier!=web", example.com/no-reboot]
    pre-reboot-node-labels: [example.com/rebooting=true, example.com/pool=blue]
    notify-url: ["generic+https://hooks.example.com/a?x=1,2", "generic+https://hooks.example.com/b"]
    notify-template-failure: "{{ .Node }} failed: {{ .Message }}"
    # The health endpoints on the metrics port (the controller allows it).
    health-probe-bind-address: ":8080"
  podDisruptionBudget:
    minAvailable: 2
  tolerations:
    - key: node-role.kubernetes.io/control-plane
      operator: Exists
      effect: NoSchedule
metrics:
  serviceMonitor:
    enabled: true
    interval: 1m
    labels: {release: kube-prometheus-stack}
  prometheusRule:
    enabled: true
    labels: {release: kube-prometheus-stack}
nodeProblemDetector:
  enabled: true
  conditionType: KernelUpdateRequired
  invokeInterval: 10m
`

// TestHelmInstall renders the chart with its defaults and with non-default
// values, applies each server-side, and checks what the API server stored.
func TestHelmInstall(t *testing.T) {
	t.Parallel() // its own cluster
	c := framework.StartCluster(t, framework.Options{Nodes: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	applyCRDs(ctx, t, c)

	t.Run("defaults", func(t *testing.T) {
		applyManifests(ctx, t, c, mustHelmTemplate(t, "namespace.create=true"))
		waitPolicyTypeChecked(ctx, t, c)
		waitWorkloads(ctx, t, c, 2, 2)
		token := probePod(ctx, t, c, "probe-node-0", "node-0")
		waitPolicyEnforced(ctx, t, c, token, true)
		checkPolicy(ctx, t, c, token, true)
		checkControllerPolicy(ctx, t, c)
	})

	t.Run("non-default values", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(f, []byte(nonDefaultValues), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := helmTemplateFile(t, f)
		if err != nil {
			t.Fatal(err)
		}
		applyManifests(ctx, t, c, out)
		p := waitPolicyTypeChecked(ctx, t, c)
		if v := p.Spec.Variables[0]; v.Name != "ownedConditions" || v.Expression != "[]" {
			t.Errorf("policy with node-problem-detector: %s = %s, want []", v.Name, v.Expression)
		}
		waitWorkloads(ctx, t, c, 2, 3)

		ds, err := c.Client.AppsV1().DaemonSets(systemNS).Get(ctx, detectorSA, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dc := ds.Spec.Template.Spec.Containers[0]
		d := parseDetector(t, dc.Args)
		if d.RebootMethod != "signal" || d.KubeAPIQPS != 7.5 || d.ResyncPeriod != 2*time.Minute || d.HeartbeatPeriod != 10*time.Minute ||
			d.Detection || d.MetricsBindAddress != ":9090" || d.HealthProbeBindAddress != ":9091" {
			t.Errorf("detector options from the values: %+v", *d)
		}
		if !slices.Contains(dc.Args, "--vmodule=reporter=4") || !slices.Contains(dc.Args, "--v=2") {
			t.Errorf("detector args %q: no extraArgs or -v", dc.Args)
		}
		if dc.Image != "registry.example.com/mirror/nodereboot:v9.9.9" || ds.Spec.Template.Spec.ImagePullSecrets[0].Name != "mirror-credentials" {
			t.Errorf("detector image %s, pull secrets %v", dc.Image, ds.Spec.Template.Spec.ImagePullSecrets)
		}
		sc := dc.SecurityContext
		if !ds.Spec.Template.Spec.HostPID || sc.Privileged == nil || *sc.Privileged || sc.Capabilities == nil ||
			len(sc.Capabilities.Add) > 0 || sc.AppArmorProfile == nil || sc.AppArmorProfile.Type != corev1.AppArmorProfileTypeUnconfined {
			t.Errorf("signal detector: hostPID %v, securityContext %+v", ds.Spec.Template.Spec.HostPID, sc)
		}
		if len(dc.Ports) != 2 || dc.Ports[0].ContainerPort != 9090 || dc.Ports[1].ContainerPort != 9091 || dc.ReadinessProbe.HTTPGet.Port.String() != "health" {
			t.Errorf("detector ports %+v, readiness probe %+v", dc.Ports, dc.ReadinessProbe)
		}
		if ds.Spec.Template.Annotations["example.com/team"] != "platform" || dc.Resources.Requests.Memory().String() != "40Mi" {
			t.Errorf("detector pod annotations %v, resources %v", ds.Spec.Template.Annotations, dc.Resources)
		}

		dep, err := c.Client.AppsV1().Deployments(systemNS).Get(ctx, controlSA, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cc := dep.Spec.Template.Spec.Containers[0]
		co := parseController(t, cc.Args)
		if co.MaxConcurrent != 2 || !slices.Equal(co.RebootConditions, []string{"RebootRequired", "KernelUpdateRequired"}) ||
			co.NodeSelector != "nodereboot.io/pool=blue" || co.DrainTimeout != 20*time.Minute || co.DrainGracePeriod != 60 ||
			co.OnDrainFailure != "hold" || co.PostRebootSoak != 2*time.Minute || co.LeaderElection.ResourceName != "nodereboot-blue" {
			t.Errorf("controller options from the values: %+v", *co)
		}
		if !slices.Equal(co.RebootDays, []string{"sa", "su"}) || co.StartTime != "22:00" || co.EndTime != "04:00" || co.TimeZone != "Europe/Berlin" ||
			!slices.Equal(co.BlockingPodSelectors, []string{"app=batch,tier!=web", "example.com/no-reboot"}) ||
			!slices.Equal(co.PreRebootNodeLabels, []string{"example.com/rebooting=true", "example.com/pool=blue"}) ||
			!slices.Equal(co.NotifyURLs, []string{"generic+https://hooks.example.com/a?x=1,2", "generic+https://hooks.example.com/b"}) ||
			*co.NotifyStepTemplates["failure"] != "{{ .Node }} failed: {{ .Message }}" ||
			co.MaxConcurrentPerDomain != 1 || !co.OneDomainAtATime || co.TopologyKey != "topology.kubernetes.io/zone" ||
			!slices.Equal(co.PoolBudgets, []string{"gpu:1:example.com/pool in (gpu,gpu-large)", "spot:2:spot=true"}) {
			t.Errorf("controller gate options from the values: %+v", *co)
		}
		if len(cc.Ports) != 1 || cc.Ports[0].Name != "metrics" || cc.LivenessProbe.HTTPGet.Port.String() != "metrics" {
			t.Errorf("controller on one port: ports %+v, liveness %+v", cc.Ports, cc.LivenessProbe)
		}
		if len(dep.Spec.Template.Spec.Tolerations) != 1 {
			t.Errorf("controller tolerations %v", dep.Spec.Template.Spec.Tolerations)
		}
		pdb, err := c.Client.PolicyV1().PodDisruptionBudgets(systemNS).Get(ctx, controlSA, metav1.GetOptions{})
		if err != nil || pdb.Spec.MinAvailable.IntValue() != 2 {
			t.Errorf("PDB: %v %v", pdb, err)
		}
		role, err := c.Client.RbacV1().Roles(systemNS).Get(ctx, "nodereboot-controller-leader-election", metav1.GetOptions{})
		if err != nil || !slices.Contains(role.Rules[1].ResourceNames, "nodereboot-blue") {
			t.Errorf("leader-election Role: %v %v", role, err)
		}
		cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "nodereboot-npd-reboot-required", metav1.GetOptions{})
		if err != nil || !strings.Contains(cm.Data["reboot-required-monitor.json"], `"type": "KernelUpdateRequired"`) ||
			!strings.Contains(cm.Data["reboot-required-monitor.json"], `"invoke_interval": "10m"`) {
			t.Errorf("NPD ConfigMap: %v %v", cm, err)
		}

		// The custom resources, as the API server stored them.
		dyn, err := dynamic.NewForConfig(c.AdminConfig)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"servicemonitors", "prometheusrules"} {
			o, err := dyn.Resource(schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: r}).
				Namespace(systemNS).Get(ctx, "nodereboot", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			if o.GetLabels()["release"] != "kube-prometheus-stack" {
				t.Errorf("%s labels %v", r, o.GetLabels())
			}
			if r == "servicemonitors" {
				eps, _, _ := unstructured.NestedSlice(o.Object, "spec", "endpoints")
				// The detector pod's two containers: metrics and s-metrics.
				if len(eps) != 2 || eps[0].(map[string]any)["interval"] != "1m" || eps[1].(map[string]any)["interval"] != "1m" {
					t.Errorf("ServiceMonitor endpoints %v", eps)
				}
			}
		}
		if _, err := c.Client.CoreV1().Services(systemNS).Get(ctx, "nodereboot-detector-metrics", metav1.GetOptions{}); err != nil {
			t.Errorf("metrics Service: %v", err)
		}
	})

	t.Run("dbus", func(t *testing.T) {
		applyManifests(ctx, t, c, mustHelmTemplate(t, "namespace.create=true", "detector.flags.reboot-method=dbus"))
		waitWorkloads(ctx, t, c, 2, 2)
		ds, err := c.Client.AppsV1().DaemonSets(systemNS).Get(ctx, detectorSA, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sc := ds.Spec.Template.Spec.Containers[0].SecurityContext
		if ds.Spec.Template.Spec.HostPID || *sc.Privileged || len(sc.Capabilities.Add) != 0 || *sc.AllowPrivilegeEscalation {
			t.Errorf("dbus detector: hostPID %v, securityContext %+v", ds.Spec.Template.Spec.HostPID, sc)
		}
	})

	t.Run("admission policy off", func(t *testing.T) {
		for _, o := range decode(t, mustHelmTemplate(t, "admissionPolicy.enabled=false")) {
			if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") {
				t.Errorf("admissionPolicy.enabled=false renders %s", key(o))
			}
		}
	})
}
