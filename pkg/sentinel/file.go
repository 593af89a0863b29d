package sentinel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	v1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

// PackagesSuffix is appended to the sentinel path to find the file in which
// Debian and Ubuntu list the packages that require the reboot
// (/var/run/reboot-required.pkgs).
const PackagesSuffix = ".pkgs"

// MaxPackagesMessage bounds the package list in a True message.
const MaxPackagesMessage = 200

// maxPackagesFile bounds how much of the .pkgs file is read.
const maxPackagesFile = 64 << 10

// maxPackagesError bounds the error quoted when the .pkgs file cannot be
// read.
const maxPackagesError = 200

// FileProbe observes a sentinel file.
type FileProbe struct {
	// Path is the sentinel's absolute path.
	Path string
}

// Observe examines the sentinel now. It never fails: what cannot be examined
// is Unknown.
func (p FileProbe) Observe() Observation {
	li, lerr := os.Lstat(p.Path)
	var si fs.FileInfo
	var serr error
	if lerr == nil {
		si, serr = os.Stat(p.Path)
	}
	obs := classify(p.Path, li, lerr, si, serr)
	if obs.Status == v1.ConditionTrue {
		pkgs, err := readPackages(p.Path + PackagesSuffix)
		switch {
		case err != nil:
			obs.Message += fmt.Sprintf("; its package list %s%s is unreadable: %s",
				p.Path, PackagesSuffix, sanitize.Line(err.Error(), maxPackagesError))
		case len(pkgs) > 0:
			obs.Message += "; required by " + packagesMessage(pkgs, MaxPackagesMessage)
		}
	}
	return obs
}

// classify turns the results of lstat and stat on the sentinel into an
// observation. stat is only meaningful when lstat succeeded.
func classify(path string, li fs.FileInfo, lerr error, si fs.FileInfo, serr error) Observation {
	unreadable := func(format string, args ...any) Observation {
		return Observation{Status: v1.ConditionUnknown, Reason: ReasonSentinelUnreadable,
			Message: fmt.Sprintf("Sentinel %s ", path) + fmt.Sprintf(format, args...)}
	}
	switch {
	case errors.Is(lerr, fs.ErrNotExist):
		return Observation{Status: v1.ConditionFalse, Reason: ReasonSentinelAbsent,
			Message: fmt.Sprintf("Sentinel %s is absent", path)}
	case lerr != nil:
		return unreadable("cannot be examined: %v", unwrapPathError(lerr))
	case li.Mode()&fs.ModeSymlink != 0 && errors.Is(serr, fs.ErrNotExist):
		return unreadable("is a dangling symlink")
	case serr != nil:
		return unreadable("cannot be examined: %v", unwrapPathError(serr))
	case si.IsDir():
		return unreadable("is a folder, not a file")
	case !si.Mode().IsRegular():
		return unreadable("is not a regular file (%s)", fileKind(si.Mode()))
	default:
		return Observation{Status: v1.ConditionTrue, Reason: ReasonSentinelPresent,
			Message: fmt.Sprintf("Sentinel %s is present", path)}
	}
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readPackages returns the distinct non-empty lines of a .pkgs file, in
// order: nil, nil when there is none; an error when it is not a regular
// file or cannot be read.
//
// Only a regular file is opened: a named pipe would block the open (and the
// probe) until a writer comes, and a device may do anything when opened or
// read. The type is checked by stat before the open, so nothing else is
// ever opened in the normal case, and again by fstat on the open file,
// which is opened without blocking: a file swapped for a pipe between the
// two checks cannot block either.
func readPackages(path string) ([]string, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, unwrapPathError(err)
	case !fi.Mode().IsRegular():
		return nil, errNotRegular(fi.Mode())
	}
	content, err := readRegular(path, maxPackagesFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pkgs []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(content))
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// readRegular reads at most limit bytes of path, which must be a regular
// file when opened: it is opened with O_NONBLOCK (a named pipe without a
// writer opens at once instead of waiting for one) and its type is checked
// on the open file before anything is read.
func readRegular(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errNotRegular(fi.Mode())
	}
	content, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return nil, unwrapPathError(err)
	}
	return content, nil
}

// errNotRegular says what a file that is not regular is.
func errNotRegular(m fs.FileMode) error {
	return fmt.Errorf("not a regular file (%s)", fileKind(m))
}

// fileKind names the type of a file for people.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	default:
		return m.Type().String()
	}
}

// packagesMessage lists packages in at most limit bytes: as many as fit,
// followed by " and N more" for the rest, each cleaned by sanitize.Line
// (a package name comes from a file anybody with write access to the
// sentinel's folder can write).
func packagesMessage(pkgs []string, limit int) string {
	return sanitize.List(pkgs, 0, limit)
}
