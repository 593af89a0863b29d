package sentinel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"

	v1 "k8s.io/api/core/v1"
)

// PackagesSuffix is appended to the sentinel path to find the file in which
// Debian and Ubuntu list the packages that require the reboot
// (/var/run/reboot-required.pkgs).
const PackagesSuffix = ".pkgs"

// MaxPackagesMessage bounds the package list in a True message.
const MaxPackagesMessage = 200

// maxPackagesFile bounds how much of the .pkgs file is read.
const maxPackagesFile = 64 << 10

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
		if pkgs := readPackages(p.Path + PackagesSuffix); len(pkgs) > 0 {
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
		return unreadable("is not a regular file (%s)", si.Mode().Type())
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
// order, or nil when it cannot be read.
func readPackages(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var pkgs []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(io.LimitReader(f, maxPackagesFile))
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// packagesMessage lists packages in at most limit bytes: as many as fit,
// followed by " and N more" for the rest.
func packagesMessage(pkgs []string, limit int) string {
	all := strings.Join(pkgs, ", ")
	if len(all) <= limit {
		return all
	}
	// Find the largest prefix that fits together with its " and N more".
	for n := len(pkgs) - 1; n >= 1; n-- {
		s := strings.Join(pkgs[:n], ", ") + fmt.Sprintf(" and %d more", len(pkgs)-n)
		if len(s) <= limit {
			return s
		}
	}
	// Even one package is too long: cut it.
	rest := fmt.Sprintf(" and %d more", len(pkgs)-1)
	if len(pkgs) == 1 {
		rest = ""
	}
	cut := min(max(limit-len(rest)-len("..."), 0), len(pkgs[0]))
	// Never in the middle of a UTF-8 sequence: the message must stay
	// valid UTF-8 (a package name may not be ASCII).
	for cut > 0 && cut < len(pkgs[0]) && !utf8.RuneStart(pkgs[0][cut]) {
		cut--
	}
	return pkgs[0][:cut] + "..." + rest
}
