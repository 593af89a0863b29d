package framework

import (
	"fmt"
	"os"
	"path/filepath"
)

// RepoRoot returns the repository's top folder: the nearest parent of the
// working directory holding the main go.mod (the one that is not a tools
// module). Tests run in their package folder, so this walks up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "tools", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no repository root (a folder with hack/tools/go.mod) above the working directory")
		}
		dir = parent
	}
}

// DefaultBinDir is the folder with the control-plane binaries: $NODEREBOOT_BIN_DIR
// or <repo>/bin.
func DefaultBinDir() (string, error) {
	if d := os.Getenv("NODEREBOOT_BIN_DIR"); d != "" {
		return filepath.Abs(d)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

// requiredBinaries are the files StartCluster needs in the bin folder.
var requiredBinaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl"}

func checkBinaries(binDir string) error {
	for _, b := range requiredBinaries {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return fmt.Errorf("%s not found in %s: run `make tools` first", b, binDir)
		}
	}
	return nil
}
