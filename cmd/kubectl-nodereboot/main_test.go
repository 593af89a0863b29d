package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/nodereboot/nodereboot/pkg/version"
)

func TestBadFlagsExit2NamingTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag", "status"}, "--no-such-flag"},
		{[]string{"status", "--insecure-skip-tls-verify=maybe"}, "--insecure-skip-tls-verify"},
		{[]string{"pause", "--reason"}, "--reason"},
		{[]string{"request"}, "want 1 argument"},
		{[]string{"reboot-everything"}, "unknown command"},
	} {
		streams, _, _, errOut := genericiooptions.NewTestIOStreams()
		if code := run(context.Background(), tc.args, streams); code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 naming %s", tc.args, code, errOut.String(), tc.want)
		}
	}
}

// --version prints "kubectl-nodereboot <version>" on stdout, as the
// daemons do, and needs no cluster.
func TestVersion(t *testing.T) {
	defer func(v string) { version.Version = v }(version.Version)
	version.Version = "v9.8.7-test"
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	if code := run(context.Background(), []string{"--version"}, streams); code != 0 || out.String() != "kubectl-nodereboot v9.8.7-test\n" || errOut.Len() != 0 {
		t.Fatalf("--version: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// A kubeconfig that cannot be used is a failure (1), not a usage error.
func TestUnusableKubeconfigExits1(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte("not: [a kubeconfig"), 0o600); err != nil {
		t.Fatal(err)
	}
	streams, _, _, errOut := genericiooptions.NewTestIOStreams()
	if code := run(context.Background(), []string{"--kubeconfig=" + kubeconfig, "status"}, streams); code != 1 || errOut.Len() == 0 {
		t.Fatalf("exit %d, stderr %q; want 1 with a message", code, errOut.String())
	}
}
