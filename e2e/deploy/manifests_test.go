package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller"
	"github.com/nodereboot/nodereboot/pkg/detector"
	dopts "github.com/nodereboot/nodereboot/pkg/detector/options"
	"github.com/nodereboot/nodereboot/pkg/kubeclient/fromclientset"
	"github.com/nodereboot/nodereboot/pkg/reboot"
)

// TestKustomizeFlags parses the args of every container of the base and of
// every component with the binaries' own flag parsers, and checks what each
// variant is for.
func TestKustomizeFlags(t *testing.T) {
	wantController := controllerOptions()

	variants := map[string]func(d *dopts.Options){
		"": func(*dopts.Options) {},
		"reboot-signal": func(d *dopts.Options) {
			d.RebootMethod = "signal"
		},
		"reboot-dbus": func(d *dopts.Options) {
			d.RebootMethod = "dbus"
			d.DBusSocket = hostDBusSocket
		},
		"prometheus":            func(*dopts.Options) {},
		"node-problem-detector": func(*dopts.Options) {},
	}
	for comp, edit := range variants {
		t.Run("base+"+comp, func(t *testing.T) {
			var objs []*unstructured.Unstructured
			if comp == "" {
				objs = decode(t, mustKustomize(t))
			} else {
				objs = decode(t, mustKustomize(t, comp))
			}
			ds := find(t, objs, "DaemonSet", "nodereboot-detector")
			got := parseDetector(t, stringList(t, container(t, ds), "args"))
			want := *wantRebootOnly()
			edit(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("detector container options:\n got %+v\nwant %+v", *got, want)
			}
			sc, ok := sentinelContainer(t, ds)
			if ok == (comp == "node-problem-detector") {
				t.Errorf("sentinel container present: %v", ok)
			}
			if ok {
				if got := parseDetector(t, stringList(t, sc, "args")); !reflect.DeepEqual(got, wantSentinel()) {
					t.Errorf("sentinel container options:\n got %+v\nwant %+v", *got, *wantSentinel())
				}
			}
			dep := find(t, objs, "Deployment", "nodereboot-controller")
			if got := parseController(t, stringList(t, container(t, dep), "args")); !reflect.DeepEqual(got, wantController) {
				t.Errorf("controller options:\n got %+v\nwant %+v", *got, *wantController)
			}
			checkDetectorPrivileges(t, ds, got.RebootMethod)
		})
	}

	t.Run("signal and dbus conflict", func(t *testing.T) {
		out, err := kustomize(t, overlay(t, "reboot-signal", "reboot-dbus"))
		if err == nil {
			t.Fatalf("base+reboot-signal+reboot-dbus built; want an error. Output:\n%s", out)
		}
		if !strings.Contains(err.Error(), "test failed") {
			t.Errorf("want the failed JSON-patch test, got %v", err)
		}
	})

	t.Run("signal with node-problem-detector", func(t *testing.T) {
		objs := decode(t, mustKustomize(t, "reboot-signal", "node-problem-detector"))
		ds := find(t, objs, "DaemonSet", "nodereboot-detector")
		o := parseDetector(t, stringList(t, container(t, ds), "args"))
		if _, ok := sentinelContainer(t, ds); o.RebootMethod != "signal" || o.Detection || ok {
			t.Errorf("reboot-method=%s detection=%v sentinel container %v, want signal, false and none", o.RebootMethod, o.Detection, ok)
		}
		checkDetectorPrivileges(t, ds, "signal")
	})
}

// wantRebootOnly are the options of the detector pod's detector container
// in the base: it reboots, the sentinel container detects.
func wantRebootOnly() *dopts.Options {
	o := detectorOptions()
	o.Detection = false
	return o
}

// wantSentinel are the options of the detector pod's sentinel container.
func wantSentinel() *dopts.Options {
	o := detectorOptions()
	o.RebootMethod = dopts.MethodNone
	o.Sentinel = hostSentinel
	o.MetricsBindAddress, o.HealthProbeBindAddress = ":8082", ":8083"
	return o
}

// checkDetectorPrivileges checks that each container of the detector pod
// has exactly what it needs (docs/detector.md, "Least privilege"): the
// detector container what its reboot method needs and no host mount but
// the system bus's folder (dbus); the sentinel container no root, no
// capability and the host's /var/run read-only.
func checkDetectorPrivileges(t *testing.T, ds *unstructured.Unstructured, method string) {
	t.Helper()
	spec := podSpec(t, ds)
	hostPID, _ := spec["hostPID"].(bool)
	c := container(t, ds)
	sc := securityContext(c)
	if !sc.rofs {
		t.Errorf("%s: the detector's root file system is writable", method)
	}
	if sc.uid != 0 || !sc.apeSet || sc.ape || sc.privileged || !slices.Equal(sc.drop, []string{"ALL"}) {
		t.Errorf("%s: runAsUser %d privileged=%v allowPrivilegeEscalation=%v drop=%v; want 0 (every reboot method needs root), not privileged, no escalation, drop ALL", method, sc.uid, sc.privileged, sc.ape, sc.drop)
	}
	var mounts []string
	switch method {
	case "command":
		if !hostPID || !slices.Equal(sc.add, []string{"SYS_ADMIN", "SYS_CHROOT", "SYS_PTRACE"}) || sc.appArmor != "Unconfined" {
			t.Errorf("command: hostPID=%v add=%v appArmorProfile=%q, want hostPID, SYS_ADMIN+SYS_CHROOT+SYS_PTRACE (nsenter into PID 1's mount namespace), Unconfined", hostPID, sc.add, sc.appArmor)
		}
	case "signal":
		if !hostPID || len(sc.add) > 0 || sc.appArmor != "Unconfined" {
			t.Errorf("signal: hostPID=%v add=%v appArmorProfile=%q; want hostPID, no capability (uid 0 signals PID 1 without CAP_KILL), Unconfined (the runtime's profile refuses signals to PID 1)", hostPID, sc.add, sc.appArmor)
		}
	case "dbus":
		if hostPID || len(sc.add) > 0 || sc.appArmor != "" {
			t.Errorf("dbus: hostPID=%v add=%v appArmorProfile=%q; want no hostPID, no capability, the runtime's AppArmor profile", hostPID, sc.add, sc.appArmor)
		}
		mounts = []string{"/host/var/run/dbus=/var/run/dbus"}
	default:
		t.Errorf("unknown reboot method %q", method)
	}
	if got := hostMounts(t, spec, c); !slices.Equal(got, mounts) {
		t.Errorf("%s: the detector container mounts %v, want %v", method, got, mounts)
	}
	if s, ok := sentinelContainer(t, ds); ok {
		ssc := securityContext(s)
		if ssc.uid == 0 || ssc.uid == 65532 || !ssc.nonRoot || !ssc.apeSet || ssc.ape || ssc.privileged || len(ssc.add) > 0 || !slices.Equal(ssc.drop, []string{"ALL"}) || !ssc.rofs || ssc.appArmor != "" {
			t.Errorf("sentinel container: %+v; want a uid of its own (not 0, not the image's 65532), runAsNonRoot, no capability, no escalation, read-only, the runtime's AppArmor profile", ssc)
		}
		if got := hostMounts(t, spec, s); !slices.Equal(got, []string{"/host/var/run=/var/run"}) {
			t.Errorf("the sentinel container mounts %v, want the host's /var/run at /host/var/run", got)
		}
	}
	if !strings.HasPrefix(hostSentinel, "/host/var/run/") || !strings.HasPrefix(hostDBusSocket, "/host/var/run/dbus/") {
		t.Fatal("the sentinel and the socket must be under the mounts")
	}
}

// containerSecurity is what checkDetectorPrivileges reads of a container's
// securityContext.
type containerSecurity struct {
	uid                                    int64
	privileged, ape, apeSet, rofs, nonRoot bool
	add, drop                              []string
	appArmor                               string
}

func securityContext(c map[string]any) containerSecurity {
	sc, _ := c["securityContext"].(map[string]any)
	var s containerSecurity
	if u, ok, _ := unstructured.NestedFieldNoCopy(sc, "runAsUser"); ok {
		s.uid, _ = strconv.ParseInt(fmt.Sprint(u), 10, 64)
	}
	s.privileged, _, _ = unstructured.NestedBool(sc, "privileged")
	s.ape, s.apeSet, _ = unstructured.NestedBool(sc, "allowPrivilegeEscalation")
	s.rofs, _, _ = unstructured.NestedBool(sc, "readOnlyRootFilesystem")
	s.nonRoot, _, _ = unstructured.NestedBool(sc, "runAsNonRoot")
	s.add, _, _ = unstructured.NestedStringSlice(sc, "capabilities", "add")
	s.drop, _, _ = unstructured.NestedStringSlice(sc, "capabilities", "drop")
	s.appArmor, _, _ = unstructured.NestedString(sc, "appArmorProfile", "type")
	return s
}

// hostMounts lists a container's hostPath mounts as mountPath=hostPath; each
// must be read-only.
func hostMounts(t *testing.T, spec, c map[string]any) []string {
	t.Helper()
	vols, _, _ := unstructured.NestedSlice(spec, "volumes")
	ms, _, _ := unstructured.NestedSlice(c, "volumeMounts")
	var out []string
	for _, m := range ms {
		m := m.(map[string]any)
		for _, v := range vols {
			v := v.(map[string]any)
			if p, ok, _ := unstructured.NestedString(v, "hostPath", "path"); ok && v["name"] == m["name"] {
				if m["readOnly"] != true {
					t.Errorf("container %v: the host's %s is mounted writable", c["name"], p)
				}
				out = append(out, fmt.Sprintf("%v=%s", m["mountPath"], p))
			}
		}
	}
	return out
}

// values is deploy/helm/nodereboot/values.yaml.
func values(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), chartPath, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func flagNames(add func(*pflag.FlagSet)) []string {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	add(fs)
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden { // testing-only flags
			names = append(names, f.Name)
		}
	})
	return names
}

// TestHelmValuesCoverEveryFlag: detector.flags and controller.flags have a
// key for every flag of the binary (and nothing the binary does not parse),
// and the chart's default render gives the binaries' defaults, except the
// two host paths under the mount.
func TestHelmValuesCoverEveryFlag(t *testing.T) {
	v := values(t)
	for _, bin := range []struct {
		name   string
		flags  map[string]any
		names  []string
		except []string // flags deliberately not in values
	}{
		{"detector", v["detector"].(map[string]any)["flags"].(map[string]any), flagNames(detectorOptions().AddFlags), []string{"node-name"}},
		{"controller", v["controller"].(map[string]any)["flags"].(map[string]any), flagNames(controllerOptions().AddFlags), nil},
	} {
		for _, n := range bin.names {
			if _, ok := bin.flags[n]; !ok && !slices.Contains(bin.except, n) {
				t.Errorf("values.yaml: %s.flags has no %q", bin.name, n)
			}
		}
		for n := range bin.flags {
			if !slices.Contains(bin.names, n) && n != "v" {
				t.Errorf("values.yaml: %s.flags.%s is not a flag of nodereboot-%s", bin.name, n, bin.name)
			}
		}
		for _, n := range bin.except {
			if _, ok := bin.flags[n]; ok {
				t.Errorf("values.yaml: %s.flags.%s must not be set by the chart", bin.name, n)
			}
		}
	}

	objs := decode(t, mustHelmTemplate(t))
	ds := find(t, objs, "DaemonSet", "nodereboot-detector")
	if got := parseDetector(t, stringList(t, container(t, ds), "args")); !reflect.DeepEqual(got, wantRebootOnly()) {
		t.Errorf("chart's detector container options are not the binary's defaults:\n got %+v\nwant %+v", *got, *wantRebootOnly())
	}
	if sc, ok := sentinelContainer(t, ds); !ok {
		t.Errorf("the chart renders no sentinel container")
	} else if got := parseDetector(t, stringList(t, sc, "args")); !reflect.DeepEqual(got, wantSentinel()) {
		t.Errorf("chart's sentinel container options are not the binary's defaults:\n got %+v\nwant %+v", *got, *wantSentinel())
	}
	dep := find(t, objs, "Deployment", "nodereboot-controller")
	if got := parseController(t, stringList(t, container(t, dep), "args")); !reflect.DeepEqual(got, controllerOptions()) {
		t.Errorf("chart's controller options are not the binary's defaults:\n got %+v\nwant %+v", *got, *controllerOptions())
	}
}

// helmFor are the chart values that install what a kustomize component does.
var helmFor = map[string][]string{
	"":                      nil,
	"reboot-signal":         {"detector.flags.reboot-method=signal"},
	"reboot-dbus":           {"detector.flags.reboot-method=dbus"},
	"prometheus":            {"metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true"},
	"node-problem-detector": {"nodeProblemDetector.enabled=true"},
}

// TestHelmMatchesKustomize: for the base and each component, the chart
// renders the same objects (kind, namespace, name) with the same content:
// equal options parsed from the args, equal everything else but the chart's
// extra labels.
func TestHelmMatchesKustomize(t *testing.T) {
	for comp, sets := range helmFor {
		t.Run("base+"+comp, func(t *testing.T) {
			var k string
			if comp == "" {
				k = mustKustomize(t)
			} else {
				k = mustKustomize(t, comp)
			}
			kobjs := index(t, decode(t, k))
			hobjs := index(t, decode(t, mustHelmTemplate(t, append([]string{"namespace.create=true"}, sets...)...)))
			if !slices.Equal(keys(kobjs), keys(hobjs)) {
				t.Fatalf("different objects:\nkustomize %v\nhelm      %v", keys(kobjs), keys(hobjs))
			}
			for name, ko := range kobjs {
				compareObjects(t, name, ko, hobjs[name])
			}
		})
	}
}

func compareObjects(t *testing.T, name string, k, h *unstructured.Unstructured) {
	t.Helper()
	k, h = k.DeepCopy(), h.DeepCopy()
	for lk, lv := range k.GetLabels() {
		if h.GetLabels()[lk] != lv {
			t.Errorf("%s: label %s=%s in kustomize, %q in helm", name, lk, lv, h.GetLabels()[lk])
		}
	}
	if !reflect.DeepEqual(k.GetAnnotations(), h.GetAnnotations()) {
		t.Errorf("%s: annotations differ: kustomize %v, helm %v", name, k.GetAnnotations(), h.GetAnnotations())
	}
	switch k.GetKind() {
	case "DaemonSet":
		kcs, hcs := containers(t, k), containers(t, h)
		for i := range min(len(kcs), len(hcs)) {
			kargs, hargs := stringList(t, kcs[i], "args"), stringList(t, hcs[i], "args")
			if ko, ho := parseDetector(t, kargs), parseDetector(t, hargs); !reflect.DeepEqual(ko, ho) {
				t.Errorf("%s container %v: options differ:\nkustomize %+v\nhelm      %+v", name, kcs[i]["name"], *ko, *ho)
			}
		}
		dropArgs(k)
		dropArgs(h)
	case "Deployment":
		kargs, hargs := stringList(t, container(t, k), "args"), stringList(t, container(t, h), "args")
		if ko, ho := parseController(t, kargs), parseController(t, hargs); !reflect.DeepEqual(ko, ho) {
			t.Errorf("%s: options differ:\nkustomize %+v\nhelm      %+v", name, *ko, *ho)
		}
		dropArgs(k)
		dropArgs(h)
	}
	delete(k.Object, "metadata")
	delete(h.Object, "metadata")
	if !reflect.DeepEqual(k.Object, h.Object) {
		kb, _ := yaml.Marshal(k.Object)
		hb, _ := yaml.Marshal(h.Object)
		t.Errorf("%s differs:\n--- kustomize\n%s\n--- helm\n%s", name, kb, hb)
	}
}

// dropArgs removes every container's args (compared as options) and an
// empty volumes list (what a component that removes the only volume leaves).
func dropArgs(o *unstructured.Unstructured) {
	spec := o.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	for _, c := range spec["containers"].([]any) {
		delete(c.(map[string]any), "args")
	}
	if vs, ok := spec["volumes"].([]any); ok && len(vs) == 0 {
		delete(spec, "volumes")
	}
}

// TestHelmRBACIsDeployRBAC: the chart's RBAC is deploy/rbac (rules,
// bindings), so that the RBAC the other teams test is the RBAC users get.
func TestHelmRBACIsDeployRBAC(t *testing.T) {
	var files []string
	for _, f := range []string{"detector-clusterrole.yaml", "controller-clusterrole.yaml"} {
		b, err := os.ReadFile(filepath.Join(root(t), "deploy", "rbac", f))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, string(b))
	}
	want := index(t, decode(t, strings.Join(files, "\n---\n")))
	got := map[string]*unstructured.Unstructured{}
	for k, o := range index(t, decode(t, mustHelmTemplate(t))) {
		if strings.HasPrefix(o.GetAPIVersion(), "rbac.authorization.k8s.io/") {
			got[k] = o
		}
	}
	if !slices.Equal(keys(want), keys(got)) {
		t.Fatalf("RBAC objects differ:\ndeploy/rbac %v\nchart       %v", keys(want), keys(got))
	}
	for k, w := range want {
		compareObjects(t, k, w, got[k])
	}

	// A renamed Lease is still the only one the controller may update.
	objs := decode(t, mustHelmTemplate(t, "controller.flags.leader-elect-resource-name=my-lease"))
	role := find(t, objs, "Role", "nodereboot-controller-leader-election")
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	var names []string
	for _, r := range rules {
		rn, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resourceNames")
		names = append(names, rn...)
	}
	if !slices.Equal(names, []string{"my-lease"}) {
		t.Errorf("leader-election Role names %v, want [my-lease]", names)
	}
}

// TestHelmRejectsBadValues: the chart refuses what cannot work.
func TestHelmRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{[]string{"detector.flags.reboot-method=kexec"}, "must be command, signal or dbus"},
		{[]string{"detector.flags.reboot-method=dbus", "detector.flags.sentinel-command=needs-restarting -r"}, "needs the privileges of reboot-method command"},
		{[]string{"nodeProblemDetector.enabled=true", "nodeProblemDetector.conditionType=KernelUpdate"}, "not in controller.flags.reboot-conditions"},
	} {
		out, err := helmTemplate(t, tc.sets...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("helm template %v: err %v, want %q (output %d bytes)", tc.sets, err, tc.want, len(out))
		}
	}
}

// TestHelmLint runs helm lint --strict with the default and with every option
// switched on.
func TestHelmLint(t *testing.T) {
	chart := filepath.Join(root(t), chartPath)
	for _, sets := range [][]string{nil, {"namespace.create=true", "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true", "nodeProblemDetector.enabled=true", "detector.flags.reboot-method=signal"}} {
		args := []string{"lint", "--strict", chart, "--namespace", systemNS}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		if out, err := run(t, "", nil, helm(t), args...); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	}
}

// knownSeries are the series the binaries export at start: controller and
// detector registries gathered.
func knownSeries(t *testing.T) map[string][]map[string]string {
	t.Helper()
	reg := prometheus.NewRegistry()
	controller.NewMetrics(reg)
	dir := t.TempDir()
	bootID := filepath.Join(dir, "boot_id")
	if err := os.WriteFile(bootID, []byte("0b6e3c9c-0000-4000-8000-000000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := detector.New(detector.Config{
		Client: fromclientset.New(fake.NewClientset()), NodeName: testNode, ConditionType: contract.DefaultConditionType,
		Detection: true, Source: detector.FileSource{Path: filepath.Join(dir, "reboot-required")},
		HeartbeatPeriod: time.Minute, BootIDFile: bootID, Rebooter: reboot.Command{Argv: []string{"true"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	series := map[string][]map[string]string{}
	for _, g := range []prometheus.Gatherer{reg, d.Registry()} {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, lp := range m.GetLabel() {
					labels[lp.GetName()] = lp.GetValue()
				}
				series[mf.GetName()] = append(series[mf.GetName()], labels)
			}
			if len(mf.GetMetric()) == 0 {
				series[mf.GetName()] = nil
			}
		}
	}
	return series
}

var (
	selectorRE = regexp.MustCompile(`(nodereboot_[a-z_]+)(\{([^}]*)\})?`)
	matcherRE  = regexp.MustCompile(`([a-z_]+)\s*(=~|=)\s*"([^"]*)"`)
)

// TestAlertsUseExportedMetrics: every metric an alert names is exported by a
// binary, with the label values its selectors ask for (a typo in a rule
// would otherwise alert never).
func TestAlertsUseExportedMetrics(t *testing.T) {
	series := knownSeries(t)
	rule := find(t, decode(t, mustKustomize(t, "prometheus")), "PrometheusRule", "nodereboot")
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	alerts := 0
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rules {
			r := r.(map[string]any)
			expr, _ := r["expr"].(string)
			alerts++
			sels := selectorRE.FindAllStringSubmatch(expr, -1)
			if len(sels) == 0 {
				t.Errorf("alert %v: no nodereboot metric in %q", r["alert"], expr)
			}
			for _, s := range sels {
				name := s[1]
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if _, ok := series[name]; !ok && strings.HasSuffix(name, suffix) {
						name = strings.TrimSuffix(name, suffix)
					}
				}
				ss, ok := series[name]
				if !ok {
					t.Errorf("alert %v: metric %s is not exported", r["alert"], s[1])
					continue
				}
				for _, m := range matcherRE.FindAllStringSubmatch(s[3], -1) {
					label, op, value := m[1], m[2], m[3]
					alts := []string{value}
					if op == "=~" {
						alts = strings.Split(value, "|")
					}
					for _, a := range alts {
						if !slices.ContainsFunc(ss, func(l map[string]string) bool { return l[label] == a }) {
							t.Errorf("alert %v: %s has no series with %s=%q", r["alert"], name, label, a)
						}
					}
				}
			}
			if r["alert"] == nil || r["annotations"] == nil || r["labels"] == nil {
				t.Errorf("rule %v: want alert, labels (severity) and annotations", r)
			}
		}
	}
	if alerts < 4 {
		t.Fatalf("only %d alerts", alerts)
	}
	// The ones the install guide promises.
	for _, want := range []string{"NodeRebootFailed", "NodeRebootRolloutStuck", "NodeRebootDrainFailed", "NodeRebootTimedOut"} {
		if !strings.Contains(mustKustomize(t, "prometheus"), "alert: "+want+"\n") {
			t.Errorf("no alert %s", want)
		}
	}
}

// TestNodeProblemDetectorPlugin: the monitor config is valid JSON for the
// condition the controller reads, names the script of the same ConfigMap, and
// the script follows NPD's exit-code convention.
func TestNodeProblemDetectorPlugin(t *testing.T) {
	cm := find(t, decode(t, mustKustomize(t, "node-problem-detector")), "ConfigMap", "nodereboot-npd-reboot-required")
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	var cfg struct {
		Plugin     string `json:"plugin"`
		Conditions []struct {
			Type, Reason string
		} `json:"conditions"`
		Rules []struct {
			Type, Condition, Reason, Path string
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(data["reboot-required-monitor.json"]), &cfg); err != nil {
		t.Fatalf("monitor config: %v", err)
	}
	if cfg.Plugin != "custom" || len(cfg.Conditions) != 1 || cfg.Conditions[0].Type != contract.DefaultConditionType ||
		len(cfg.Rules) != 1 || cfg.Rules[0].Type != "permanent" || cfg.Rules[0].Condition != contract.DefaultConditionType {
		t.Errorf("monitor config: %+v; want a custom plugin with one permanent rule for %s", cfg, contract.DefaultConditionType)
	}
	const mountDir = "/config/nodereboot/"
	script := strings.TrimPrefix(cfg.Rules[0].Path, mountDir)
	if !strings.HasPrefix(cfg.Rules[0].Path, mountDir) || data[script] == "" {
		t.Fatalf("rule path %q: want %s<a key of the ConfigMap>", cfg.Rules[0].Path, mountDir)
	}

	path := filepath.Join(t.TempDir(), script)
	if err := os.WriteFile(path, []byte(data[script]), 0o755); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(t.TempDir(), "run")
	check := func(wantCode int, wantOut string) {
		t.Helper()
		cmd := exec.Command(path)
		cmd.Env = append(os.Environ(), "HOST_RUN_DIR="+runDir)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode || !strings.Contains(string(out), wantOut) {
			t.Errorf("exit %d %q, want %d and %q", code, out, wantCode, wantOut)
		}
	}
	check(2, "is not mounted") // Unknown
	if err := os.Mkdir(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	check(0, "") // no reboot required
	if err := os.WriteFile(filepath.Join(runDir, "reboot-required"), []byte("*** System restart required ***\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check(1, "is present") // reboot required
	if err := os.WriteFile(filepath.Join(runDir, "reboot-required.pkgs"), []byte("linux-image-6.1.0-30-amd64\nlibc6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check(1, "linux-image-6.1.0-30-amd64 libc6")
}

// TestComponentsAreOptIn: the base has no object of a component.
func TestComponentsAreOptIn(t *testing.T) {
	base := index(t, decode(t, mustKustomize(t)))
	var kinds []string
	for _, o := range base {
		kinds = append(kinds, o.GetKind())
	}
	sort.Strings(kinds)
	for _, k := range []string{"ServiceMonitor", "PrometheusRule", "ConfigMap", "Service"} {
		if slices.Contains(kinds, k) {
			t.Errorf("the base has a %s", k)
		}
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"DaemonSet", "Deployment", "PodDisruptionBudget", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("the base has no %s", k)
		}
	}
}

// TestPoliciesFollowRenames: no admission policy names a service account or
// a namespace (a renamed install would escape it): the controller is found
// through RBAC (manage nodes.nodereboot.io), the detector through the
// ClusterRoleBinding labelled nodereboot.io/identity=detector, which keeps
// that label and follows the renamed service account under namePrefix,
// nameSuffix and namespace. e2e/attacks runs such an install.
func TestPoliciesFollowRenames(t *testing.T) {
	for _, o := range decode(t, mustKustomize(t)) {
		if o.GetKind() != "ValidatingAdmissionPolicy" {
			continue
		}
		b, err := json.Marshal(o.Object["spec"])
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"nodereboot-system", "nodereboot-controller", "nodereboot-detector"} {
			if strings.Contains(string(b), name) {
				t.Errorf("policy %s names %q: a renamed install escapes it", o.GetName(), name)
			}
		}
	}
	dir := overlayIn(t, "acme-system")
	f := filepath.Join(dir, "kustomization.yaml")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, append(b, "namePrefix: acme-\nnameSuffix: -v2\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := kustomize(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, out)
	crb := find(t, objs, "ClusterRoleBinding", "acme-nodereboot-detector-v2")
	subjects, _, _ := unstructured.NestedSlice(crb.Object, "subjects")
	s := subjects[0].(map[string]any)
	if crb.GetLabels()["nodereboot.io/identity"] != "detector" || s["name"] != "acme-nodereboot-detector-v2" || s["namespace"] != "acme-system" {
		t.Errorf("renamed detector binding: labels %v, subject %v", crb.GetLabels(), s)
	}
	for _, p := range []string{"nodereboot-detector-own-node", "nodereboot-detector-own-events", "nodereboot-controller-annotations", "nodereboot-controller-status"} {
		b := find(t, objs, "ValidatingAdmissionPolicyBinding", "acme-"+p+"-v2")
		if got, _, _ := unstructured.NestedString(b.Object, "spec", "policyName"); got != "acme-"+p+"-v2" {
			t.Errorf("binding %s names policy %q", b.GetName(), got)
		}
	}
	role := find(t, objs, "ClusterRole", "acme-nodereboot-controller-v2")
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	found := false
	for _, r := range rules {
		r := r.(map[string]any)
		if fmt.Sprint(r["apiGroups"], r["resources"], r["verbs"]) == "[nodereboot.io] [nodes] [manage]" {
			found = true
		}
	}
	if !found {
		t.Errorf("the renamed controller's ClusterRole lost manage nodes.nodereboot.io: %v", rules)
	}
}

// TestHelmPoliciesFollowTheRelease: another release name and namespace
// change the chart's subjects, not its policies, and keep the detector
// binding's label.
func TestHelmPoliciesFollowTheRelease(t *testing.T) {
	out, err := run(t, "", nil, helm(t), "template", "acme", filepath.Join(root(t), chartPath), "--namespace", "ops")
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, out)
	for _, name := range []string{"nodereboot-detector", "nodereboot-controller"} {
		crb := find(t, objs, "ClusterRoleBinding", name)
		subjects, _, _ := unstructured.NestedSlice(crb.Object, "subjects")
		if ns := subjects[0].(map[string]any)["namespace"]; ns != "ops" {
			t.Errorf("%s: subject namespace %v, want ops", name, ns)
		}
	}
	if l := find(t, objs, "ClusterRoleBinding", "nodereboot-detector").GetLabels()["nodereboot.io/identity"]; l != "detector" {
		t.Errorf("the detector's binding lost its identity label (%q)", l)
	}
	// The policies and their bindings are the same as in the default
	// release: nothing in them depends on a name or namespace.
	def := decode(t, mustHelmTemplate(t))
	n := 0
	for _, o := range objs {
		if !strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") {
			continue
		}
		n++
		if d := find(t, def, o.GetKind(), o.GetName()); !reflect.DeepEqual(d.Object["spec"], o.Object["spec"]) {
			t.Errorf("%s %s differs between releases", o.GetKind(), o.GetName())
		}
	}
	if n != 8 {
		t.Errorf("%d policy objects, want 4 policies and 4 bindings", n)
	}
}
