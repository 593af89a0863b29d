package sentinel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// fakeInfo is a fs.FileInfo with a mode.
type fakeInfo struct{ mode fs.FileMode }

func (f fakeInfo) Name() string       { return "reboot-required" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return nil }

func TestClassify(t *testing.T) {
	const p = "/var/run/reboot-required"
	notExist := &fs.PathError{Op: "lstat", Path: p, Err: syscall.ENOENT}
	denied := &fs.PathError{Op: "lstat", Path: p, Err: syscall.EACCES}
	regular := fakeInfo{0o644}
	for _, tc := range []struct {
		name        string
		li          fs.FileInfo
		lerr        error
		si          fs.FileInfo
		serr        error
		want        v1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		{"absent", nil, notExist, nil, nil, v1.ConditionFalse, ReasonSentinelAbsent, "is absent"},
		{"regular file", regular, nil, regular, nil, v1.ConditionTrue, ReasonSentinelPresent, "is present"},
		{"unreadable mode still present", fakeInfo{0}, nil, fakeInfo{0}, nil, v1.ConditionTrue, ReasonSentinelPresent, "is present"},
		{"symlink to a file", fakeInfo{fs.ModeSymlink}, nil, regular, nil, v1.ConditionTrue, ReasonSentinelPresent, "is present"},
		{"permission denied on lstat", nil, denied, nil, nil, v1.ConditionUnknown, ReasonSentinelUnreadable, "permission denied"},
		{"permission denied on stat", fakeInfo{fs.ModeSymlink}, nil, nil, denied, v1.ConditionUnknown, ReasonSentinelUnreadable, "permission denied"},
		{"dangling symlink", fakeInfo{fs.ModeSymlink}, nil, nil, notExist, v1.ConditionUnknown, ReasonSentinelUnreadable, "dangling symlink"},
		{"folder", fakeInfo{fs.ModeDir | 0o755}, nil, fakeInfo{fs.ModeDir | 0o755}, nil, v1.ConditionUnknown, ReasonSentinelUnreadable, "is a folder"},
		{"symlink to a folder", fakeInfo{fs.ModeSymlink}, nil, fakeInfo{fs.ModeDir}, nil, v1.ConditionUnknown, ReasonSentinelUnreadable, "is a folder"},
		{"fifo", fakeInfo{fs.ModeNamedPipe}, nil, fakeInfo{fs.ModeNamedPipe}, nil, v1.ConditionUnknown, ReasonSentinelUnreadable, "not a regular file"},
		{"other error", nil, errors.New("I/O error"), nil, nil, v1.ConditionUnknown, ReasonSentinelUnreadable, "I/O error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(p, tc.li, tc.lerr, tc.si, tc.serr)
			if got.Status != tc.want || got.Reason != tc.wantReason || !strings.Contains(got.Message, tc.wantMessage) {
				t.Errorf("classify = %v, want %s/%s with %q", got, tc.want, tc.wantReason, tc.wantMessage)
			}
			if !strings.Contains(got.Message, p) {
				t.Errorf("message %q does not name the sentinel", got.Message)
			}
		})
	}
}

func TestFileProbeOnDisk(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "reboot-required")
	probe := FileProbe{Path: p}
	check := func(step string, want v1.ConditionStatus, reason string) Observation {
		t.Helper()
		got := probe.Observe()
		if got.Status != want || got.Reason != reason {
			t.Fatalf("%s: Observe() = %v, want %s/%s", step, got, want, reason)
		}
		return got
	}
	check("absent", v1.ConditionFalse, ReasonSentinelAbsent)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check("created", v1.ConditionTrue, ReasonSentinelPresent)
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	check("mode 000", v1.ConditionTrue, ReasonSentinelPresent)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	check("removed", v1.ConditionFalse, ReasonSentinelAbsent)
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	check("folder", v1.ConditionUnknown, ReasonSentinelUnreadable)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), p); err != nil {
		t.Fatal(err)
	}
	check("dangling symlink", v1.ConditionUnknown, ReasonSentinelUnreadable)
	if err := os.WriteFile(filepath.Join(dir, "nowhere"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check("symlink to a file", v1.ConditionTrue, ReasonSentinelPresent)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	check("fifo", v1.ConditionUnknown, ReasonSentinelUnreadable)
}

func TestFileProbePackages(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "reboot-required")
	if err := os.WriteFile(p, []byte("*** System restart required ***\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+PackagesSuffix, []byte("linux-image-6.1.0-30-amd64\nlibc6\n\nlibc6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := FileProbe{Path: p}.Observe()
	want := fmt.Sprintf("Sentinel %s is present; required by linux-image-6.1.0-30-amd64, libc6", p)
	if got.Status != v1.ConditionTrue || got.Message != want {
		t.Fatalf("Observe() = %v, want True with message %q", got, want)
	}

	var many []string
	for i := range 100 {
		many = append(many, fmt.Sprintf("package-number-%02d", i))
	}
	if err := os.WriteFile(p+PackagesSuffix, []byte(strings.Join(many, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	got = FileProbe{Path: p}.Observe()
	if !strings.Contains(got.Message, "package-number-00, package-number-01") || !strings.HasSuffix(got.Message, " more") {
		t.Fatalf("message %q does not list the first packages and the count of the rest", got.Message)
	}
}

func TestPackagesMessage(t *testing.T) {
	for _, tc := range []struct {
		pkgs []string
		max  int
		want string
	}{
		{[]string{"a"}, 200, "a"},
		{[]string{"a", "b", "c"}, 200, "a, b, c"},
		{[]string{"a", "b", "c"}, 7, "a, b, c"},
		{[]string{"aaaa", "bbbb", "cccc", "dddd"}, 20, "aaaa and 3 more"},
		{[]string{"aaaa", "bbbb", "cccc", "dddd"}, 21, "aaaa, bbbb and 2 more"},
		{[]string{"a-very-long-package-name"}, 10, "a-very-..."},
		{[]string{"a-very-long-package-name", "b"}, 20, "a-very... and 1 more"},
		// Regression (FuzzPackages): the cut never splits a UTF-8 sequence.
		{[]string{"ééééé"}, 8, "éé..."},
		{[]string{"aéééé"}, 8, "aéé..."},
	} {
		got := packagesMessage(tc.pkgs, tc.max)
		if got != tc.want {
			t.Errorf("packagesMessage(%q, %d) = %q, want %q", tc.pkgs, tc.max, got, tc.want)
		}
		if len(got) > tc.max && len(strings.Join(tc.pkgs, ", ")) > tc.max {
			t.Errorf("packagesMessage(%q, %d) = %q is longer than %d", tc.pkgs, tc.max, got, tc.max)
		}
	}
}

// within fails the test unless f returns within 10 seconds: the probe
// must never block.
func within[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s blocked for 10s", what)
		var zero T
		return zero
	}
}

// A .pkgs that is a named pipe (nobody writes to it) or a device is not
// opened: the sentinel is still present, and the message says why the list
// is missing.
func TestFileProbePackagesNotRegular(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, pkgs string)
		want string
	}{
		{"named pipe", func(t *testing.T, pkgs string) {
			if err := syscall.Mkfifo(pkgs, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file (a named pipe)"},
		{"symlink to /dev/zero", func(t *testing.T, pkgs string) {
			if err := os.Symlink("/dev/zero", pkgs); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file (a character device)"},
		{"folder", func(t *testing.T, pkgs string) {
			if err := os.Mkdir(pkgs, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file (a folder)"},
		{"dangling symlink: no list", func(t *testing.T, pkgs string) {
			if err := os.Symlink(pkgs+".nowhere", pkgs); err != nil {
				t.Fatal(err)
			}
		}, "is present"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "reboot-required")
			mustWrite(t, p)
			tc.make(t, p+PackagesSuffix)
			got := within(t, "Observe", FileProbe{Path: p}.Observe)
			if got.Status != v1.ConditionTrue || got.Reason != ReasonSentinelPresent || !strings.HasSuffix(got.Message, tc.want) {
				t.Fatalf("Observe() = %v, want True/%s ending with %q", got, ReasonSentinelPresent, tc.want)
			}
		})
	}
}

// The check after the open: a file swapped for a named pipe or a device
// after the stat is opened without blocking and refused before any read.
func TestReadRegularRefusesWhatIsNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pkgs")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, "/dev/zero", "/dev/null"} {
		err := within(t, "readRegular("+path+")", func() error {
			_, err := readRegular(path, maxPackagesFile)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("readRegular(%s) = %v, want not a regular file", path, err)
		}
	}
	regular := filepath.Join(t.TempDir(), "pkgs")
	if err := os.WriteFile(regular, []byte(strings.Repeat("x", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := readRegular(regular, 10); err != nil || string(got) != "xxxxxxxxxx" {
		t.Errorf("readRegular(regular, 10) = %q, %v", got, err)
	}
}

// Package names are shown escaped: an ESC, a BEL, a C1 control, a bidi
// override or a byte that is not UTF-8 never reaches the condition.
func TestFileProbePackagesControlCharacters(t *testing.T) {
	p := filepath.Join(t.TempDir(), "reboot-required")
	mustWrite(t, p)
	content := "libc6\x1b[2J\nbell\a\ncsi\u009b1m\nrtl\u202eevil\nbad\xff\n"
	if err := os.WriteFile(p+PackagesSuffix, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got := FileProbe{Path: p}.Observe()
	want := fmt.Sprintf(`Sentinel %s is present; required by libc6\x1b[2J, bell\x07, csi\u009b1m, rtl\u202eevil, bad\xff`, p)
	if got.Message != want {
		t.Fatalf("message %q, want %q", got.Message, want)
	}
}
