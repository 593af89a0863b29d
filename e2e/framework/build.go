package framework

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Binaries is a temporary folder for a test package's TestMain: this
// checkout's nodereboot commands, built once, next to links to the control
// plane's tools (DefaultBinDir), so that a test never runs a stale
// `make build` and the harness finds everything in one folder.
type Binaries struct {
	// Dir is the folder; pass it as Options.BinDir or NODEREBOOT_BIN_DIR.
	Dir string
}

// Path is the path of the named binary in the folder.
func (b *Binaries) Path(name string) string { return filepath.Join(b.Dir, name) }

// Remove deletes the folder.
func (b *Binaries) Remove() { _ = os.RemoveAll(b.Dir) }

// BuildBinaries builds the named commands (folders under cmd/, e.g.
// "nodereboot-controller") from this checkout into a new temporary folder
// and links the control plane's tools next to them. With prebuilt set (a
// folder of another build: a release, a bisection), the commands are linked
// from there instead of built.
func BuildBinaries(prebuilt string, commands ...string) (*Binaries, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	tools, err := DefaultBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nodereboot-e2e-bin-")
	if err != nil {
		return nil, err
	}
	b := &Binaries{Dir: dir}
	fail := func(err error) (*Binaries, error) {
		b.Remove()
		return nil, err
	}
	for _, t := range requiredBinaries {
		if err := os.Symlink(filepath.Join(tools, t), b.Path(t)); err != nil {
			return fail(err)
		}
	}
	if prebuilt != "" {
		for _, c := range commands {
			abs, err := filepath.Abs(filepath.Join(prebuilt, c))
			if err == nil {
				_, err = os.Stat(abs)
			}
			if err == nil {
				err = os.Symlink(abs, b.Path(c))
			}
			if err != nil {
				return fail(fmt.Errorf("prebuilt %s: %w", c, err))
			}
		}
		return b, nil
	}
	if len(commands) == 0 {
		return b, nil
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, c := range commands {
		args = append(args, "./cmd/"+c)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("go %v: %v\n%s", args, err, out))
	}
	return b, nil
}
