package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/nodereboot/nodereboot/e2e/framework"
	copts "github.com/nodereboot/nodereboot/pkg/controller/options"
	dopts "github.com/nodereboot/nodereboot/pkg/detector/options"
)

const (
	systemNS   = "nodereboot-system"
	detectorSA = "nodereboot-detector"
	controlSA  = "nodereboot-controller"
	policyName = "nodereboot-detector-own-node"
	// The other admission policies.
	eventsPolicy     = "nodereboot-detector-own-events"
	controllerPolicy = "nodereboot-controller-annotations"
	statusPolicy     = "nodereboot-controller-status"
	chartPath        = "deploy/helm/nodereboot"
	releaseName      = "nodereboot"
)

// policyNames are the install's admission policies.
var policyNames = []string{policyName, eventsPolicy, controllerPolicy, statusPolicy}

// The paths where the manifests mount the host's /var/run (the sentinel
// container) and /var/run/dbus (the detector container, reboot-dbus).
const (
	hostSentinel   = "/host/var/run/reboot-required"
	hostDBusSocket = "/host/var/run/dbus/system_bus_socket"
)

// components are the kustomize components in deploy/components.
var components = []string{"reboot-signal", "reboot-dbus", "prometheus", "node-problem-detector"}

var (
	rootOnce sync.Once
	repoRoot string
	rootErr  error
)

// root is the repository's top folder.
func root(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() { repoRoot, rootErr = framework.RepoRoot() })
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return repoRoot
}

func binDir(t testing.TB) string {
	t.Helper()
	d, err := framework.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// run runs a command and returns its standard output; a failure includes
// standard error.
func run(t testing.TB, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// overlay writes a kustomization in a new temporary folder that uses the base
// and the given components (by relative paths: kustomize refuses absolute
// ones) and returns the folder.
func overlay(t testing.TB, comps ...string) string {
	t.Helper()
	return overlayIn(t, "", comps...)
}

// overlayIn is overlay with the kustomization's namespace: set ("" leaves it
// out).
func overlayIn(t testing.TB, namespace string, comps ...string) string {
	t.Helper()
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, filepath.Join(root(t), "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\n", rel)
	if namespace != "" {
		fmt.Fprintf(&b, "namespace: %s\n", namespace)
	}
	if len(comps) > 0 {
		b.WriteString("components:\n")
		for _, c := range comps {
			fmt.Fprintf(&b, "  - %s/components/%s\n", rel, c)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// kustomize builds a kustomization folder with bin/kubectl.
func kustomize(t testing.TB, dir string) (string, error) {
	t.Helper()
	return run(t, "", nil, filepath.Join(binDir(t), "kubectl"), "kustomize", dir)
}

// mustKustomize builds the base with the given components.
func mustKustomize(t testing.TB, comps ...string) string {
	t.Helper()
	out, err := kustomize(t, overlay(t, comps...))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helm returns the Helm CLI: $NODEREBOOT_HELM, bin/helm, or else it builds
// bin/helm from the tools module hack/helm (the Makefile target does the
// same).
func helm(t testing.TB) string {
	t.Helper()
	helmOnce.Do(func() {
		if p := os.Getenv("NODEREBOOT_HELM"); p != "" {
			helmPath = p
			return
		}
		p := filepath.Join(binDir(t), "helm")
		if _, err := os.Stat(p); err == nil {
			helmPath = p
			return
		}
		t.Logf("building %s from hack/helm (about 7 minutes on 2 cores from a cold cache)", p)
		dir := filepath.Join(root(t), "hack", "helm")
		gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			helmErr = err
			return
		}
		m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?helm\.sh/helm/v4 (v\S+)`).FindSubmatch(gomod)
		if m == nil {
			helmErr = fmt.Errorf("hack/helm/go.mod does not require helm.sh/helm/v4")
			return
		}
		tmp := p + ".tmp"
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X helm.sh/helm/v4/internal/version.version="+string(m[1]),
			"-o", tmp, "helm.sh/helm/v4/cmd/helm")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			helmErr = fmt.Errorf("build helm: %v\n%s", err, out)
			return
		}
		if err := os.Rename(tmp, p); err != nil {
			helmErr = err
			return
		}
		helmPath = p
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	return helmPath
}

// helmTemplate renders the chart with --set values (name=value).
func helmTemplate(t testing.TB, sets ...string) (string, error) {
	t.Helper()
	return helmTemplateFile(t, "", sets...)
}

// helmTemplateFile renders the chart with a values file (if not "") and
// --set values.
func helmTemplateFile(t testing.TB, valuesFile string, sets ...string) (string, error) {
	t.Helper()
	args := []string{"template", releaseName, filepath.Join(root(t), chartPath), "--namespace", systemNS}
	if valuesFile != "" {
		args = append(args, "--values", valuesFile)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return run(t, "", nil, helm(t), args...)
}

func mustHelmTemplate(t testing.TB, sets ...string) string {
	t.Helper()
	out, err := helmTemplate(t, sets...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decode splits a multi-document YAML stream into objects.
func decode(t testing.TB, manifests string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decode manifests: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// key names an object: Kind namespace/name.
func key(o *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
}

func index(t testing.TB, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if _, dup := m[key(o)]; dup {
			t.Fatalf("%s twice", key(o))
		}
		m[key(o)] = o
	}
	return m
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// find returns the one object of a kind and name.
func find(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the manifests", kind, name)
	return nil
}

// podSpec returns the pod template's spec of a workload.
func podSpec(t testing.TB, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	spec, ok, err := unstructured.NestedMap(o.Object, "spec", "template", "spec")
	if err != nil || !ok {
		t.Fatalf("%s: no pod template (%v)", key(o), err)
	}
	return spec
}

// container returns the first container of a workload: the controller's
// only one, the detector pod's reboot container "detector".
func container(t testing.TB, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs := containers(t, o)
	if len(cs) == 0 || (o.GetKind() == "DaemonSet" && cs[0]["name"] != "detector") {
		t.Fatalf("%s: want the container detector first, got %d containers", key(o), len(cs))
	}
	return cs[0]
}

// containers returns every container of a workload.
func containers(t testing.TB, o *unstructured.Unstructured) []map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	var out []map[string]any
	for _, c := range cs {
		out = append(out, c.(map[string]any))
	}
	return out
}

// sentinelContainer returns the detector pod's sentinel container, if any
// (none with node-problem-detector or a sentinel command).
func sentinelContainer(t testing.TB, o *unstructured.Unstructured) (map[string]any, bool) {
	t.Helper()
	cs := containers(t, o)
	for i, c := range cs {
		if c["name"] == "sentinel" {
			if i != 1 || len(cs) != 2 {
				t.Fatalf("%s: the sentinel container is container %d of %d, want the second of two", key(o), i, len(cs))
			}
			return c, true
		}
	}
	if len(cs) != 1 {
		t.Fatalf("%s: %d containers, no sentinel container", key(o), len(cs))
	}
	return nil, false
}

func stringList(t testing.TB, m map[string]any, field string) []string {
	t.Helper()
	v, _, err := unstructured.NestedStringSlice(m, field)
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	return v
}

// testNode is $NODE_NAME in the parsed detector options.
const testNode = "node-x"

// detectorOptions are the detector's defaults in a pod on testNode.
func detectorOptions() *dopts.Options {
	o := dopts.New()
	o.NodeName = testNode
	return o
}

// The options are bound to a throwaway flag set, as AddFlags completes them
// (the --notify-template-STEP values), so that they compare equal to parsed
// ones.
func controllerOptions() *copts.Options {
	o := copts.New(func(k string) string {
		if k == "POD_NAMESPACE" {
			return systemNS
		}
		return ""
	})
	o.AddFlags(pflag.NewFlagSet("defaults", pflag.ContinueOnError))
	return o
}

// parseDetector parses and validates a detector container's args with the
// detector's own flag set, as in a pod on testNode.
func parseDetector(t testing.TB, args []string) *dopts.Options {
	t.Helper()
	o := detectorOptions()
	fs := framework.BinaryFlagSet("nodereboot-detector", o.AddFlags)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("detector args %q: %v", args, err)
	}
	if fs.NArg() > 0 {
		t.Fatalf("detector args %q: unexpected arguments %q", args, fs.Args())
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("detector args %q: %v", args, err)
	}
	return o
}

// parseController parses and validates a controller container's args.
func parseController(t testing.TB, args []string) *copts.Options {
	t.Helper()
	o := controllerOptions()
	fs := framework.BinaryFlagSet("nodereboot-controller", o.AddFlags)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("controller args %q: %v", args, err)
	}
	if fs.NArg() > 0 {
		t.Fatalf("controller args %q: unexpected arguments %q", args, fs.Args())
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("controller args %q: %v", args, err)
	}
	return o
}
