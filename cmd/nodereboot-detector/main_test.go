package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodereboot/nodereboot/pkg/version"
)

func TestBadFlagsExit2NamingTheFlag(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--node-name: required"},
		{[]string{"--node-name=n", "--reboot-method=halt"}, "--reboot-method"},
		{[]string{"--node-name=n", "--heartbeat-period=soon"}, "--heartbeat-period"},
		{[]string{"--node-name=n", "--no-such-flag"}, "--no-such-flag"},
		{[]string{"--node-name=n", "--sentinel=relative"}, "--sentinel"},
		{[]string{"--node-name=n", "extra"}, "unexpected arguments"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2; stderr %s", tc.args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run(%q) stderr %q does not name %q", tc.args, stderr.String(), tc.want)
		}
	}
}

func TestHelpExits0(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--help: %d", code)
	}
	for _, flag := range []string{"--sentinel", "--reboot-method", "--node-name", "--v", "--version"} {
		if !strings.Contains(stdout.String(), flag) {
			t.Errorf("--help does not list %s", flag)
		}
	}
}

func TestStartupErrorExits1(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--node-name=n", "--kubeconfig=" + kubeconfig, "--boot-id-file=" + filepath.Join(dir, "missing")}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "boot ID") {
		t.Fatalf("missing boot ID file: %d %q, want 1 and a message about the boot ID", code, stderr.String())
	}
}

// --version prints "nodereboot-detector <version>" on stdout, as the
// controller does, and needs no --node-name.
func TestVersion(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	defer func(v string) { version.Version = v }(version.Version)
	version.Version = "v9.8.7-test"
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--version"}, &stdout, &stderr)
	if code != 0 || stdout.String() != "nodereboot-detector v9.8.7-test\n" || stderr.Len() != 0 {
		t.Fatalf("--version: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// TestLinksNoClientset: the detector runs on every node, so it does not
// link client-go's clientset, whose scheme registers every API group at
// start (about 9 MiB more resident memory; see pkg/kubeclient).
func TestLinksNoClientset(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	apiGroups := 0
	for _, p := range strings.Fields(string(out)) {
		if p == "k8s.io/client-go/kubernetes" || strings.HasPrefix(p, "k8s.io/client-go/kubernetes/") {
			t.Errorf("the detector links %s", p)
		}
		// text/template (cobra's help) looks methods up by a run-time
		// name, which keeps every exported method in the binary: +6 MB.
		if p == "text/template" {
			t.Errorf("the detector links %s (cli.Daemon parses with pflag alone)", p)
		}
		if strings.HasPrefix(p, "k8s.io/api/") {
			apiGroups++
		}
	}
	if apiGroups != 1 {
		t.Errorf("the detector links %d packages of k8s.io/api, want 1 (core/v1)", apiGroups)
	}
}
