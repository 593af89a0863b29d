package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nodereboot/nodereboot/e2e/framework"
)

// binDir holds the nodereboot binaries built from this checkout by TestMain
// (or linked from $NODEREBOOT_FAULTS_BINARIES) and links to the control
// plane's binaries (bin/), so that a stale `make build` never runs in the
// fault tests.
var binDir string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	root, err := framework.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tools, err := framework.DefaultBinDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "nodereboot-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl"} {
		if err := os.Symlink(filepath.Join(tools, b), filepath.Join(dir, b)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if prebuilt := os.Getenv("NODEREBOOT_FAULTS_BINARIES"); prebuilt != "" {
		// Binaries of another build (a bisection, a release).
		for _, b := range []string{"nodereboot-controller", "nodereboot-detector"} {
			abs, err := filepath.Abs(filepath.Join(prebuilt, b))
			if err == nil {
				err = os.Symlink(abs, filepath.Join(dir, b))
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	} else {
		cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/nodereboot-controller", "./cmd/nodereboot-detector")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
	}
	binDir = dir
	return m.Run()
}
