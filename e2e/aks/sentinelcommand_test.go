package aks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/pkg/sentinel"
)

// The Azure Linux sentinel command of values-aks-azurelinux.yaml, split and
// run as the detector does (its own probe, no shell of ours), on simulated
// hosts: its paths mapped into a folder, needs-restarting a stand-in with
// a given exit code, or missing.
func TestAzureLinuxSentinelCommand(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "helm", "nodereboot", "values-aks-azurelinux.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Detector struct {
			Flags map[string]any `json:"flags"`
		} `json:"detector"`
	}
	if err := yaml.UnmarshalStrict(raw, &values); err != nil {
		t.Fatal(err)
	}
	command, _ := values.Detector.Flags["sentinel-command"].(string)
	if command == "" {
		t.Fatalf("values-aks-azurelinux.yaml sets no detector.flags.sentinel-command")
	}
	if strings.Contains(command, "$(") {
		t.Errorf("the kubelet would expand $( in the container's arguments: %q", command)
	}
	for _, tc := range []struct {
		name     string
		ubuntu   bool // /etc/debian_version exists
		sentinel bool // /var/run/reboot-required exists
		exit     int  // needs-restarting's exit code; -1: not installed
		status   corev1.ConditionStatus
		reason   string
	}{
		{"Ubuntu, sentinel present", true, true, -1, corev1.ConditionTrue, sentinel.ReasonCommandRequired},
		{"Ubuntu, no sentinel", true, false, -1, corev1.ConditionFalse, sentinel.ReasonCommandNotRequired},
		{"Azure Linux, reboot needed", false, false, 1, corev1.ConditionTrue, sentinel.ReasonCommandRequired},
		{"Azure Linux, up to date", false, false, 0, corev1.ConditionFalse, sentinel.ReasonCommandNotRequired},
		{"Azure Linux, needs-restarting fails", false, false, 2, corev1.ConditionUnknown, sentinel.ReasonCommandFailed},
		{"Azure Linux, needs-restarting missing", false, false, -1, corev1.ConditionUnknown, sentinel.ReasonCommandFailed},
		{"a sentinel file wins", false, true, 0, corev1.ConditionTrue, sentinel.ReasonCommandRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sentinelPath := filepath.Join(dir, "run", "reboot-required")
			debian := filepath.Join(dir, "etc", "debian_version")
			stub := filepath.Join(dir, "usr", "bin", "needs-restarting")
			for _, d := range []string{filepath.Dir(sentinelPath), filepath.Dir(debian), filepath.Dir(stub)} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			write := func(path, content string, mode os.FileMode) {
				if err := os.WriteFile(path, []byte(content), mode); err != nil {
					t.Fatal(err)
				}
			}
			if tc.ubuntu {
				write(debian, "trixie/sid\n", 0o644)
			}
			if tc.sentinel {
				write(sentinelPath, "", 0o644)
			}
			if tc.exit >= 0 {
				write(stub, "#!/bin/sh\n[ \"$1\" = -r ] || exit 9\nexit "+string(rune('0'+tc.exit))+"\n", 0o755)
			}
			mapped := strings.NewReplacer(
				"/var/run/reboot-required", sentinelPath,
				"/etc/debian_version", debian,
				"needs-restarting -r", stub+" -r",
			).Replace(command)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			obs := sentinel.CommandProbe{Argv: strings.Fields(mapped), Timeout: 10 * time.Second}.Observe(ctx)
			if obs.Status != tc.status || obs.Reason != tc.reason {
				t.Errorf("got %s %s (%s), want %s %s", obs.Status, obs.Reason, obs.Message, tc.status, tc.reason)
			}
		})
	}
}
