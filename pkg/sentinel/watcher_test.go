package sentinel

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// watch starts a FileWatcher on path whose callback observes the sentinel and
// sends the observation on the returned channel, as the detector does.
func watch(t *testing.T, path string) <-chan Observation {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	obs := make(chan Observation, 1000)
	done := make(chan error, 1)
	go func() {
		done <- FileWatcher{Path: path}.Run(ctx, func() {
			select {
			case obs <- (FileProbe{Path: path}).Observe():
			default:
				t.Error("observation channel full")
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return obs
}

// next returns the next observation, failing after a deadline.
func next(t *testing.T, obs <-chan Observation) Observation {
	t.Helper()
	select {
	case o := <-obs:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no observation within 10s")
		return Observation{}
	}
}

// waitStatus reads observations until one has status want.
func waitStatus(t *testing.T, obs <-chan Observation, want v1.ConditionStatus) Observation {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case o := <-obs:
			if o.Status == want {
				return o
			}
		case <-deadline:
			t.Fatalf("no %s observation within 10s", want)
			return Observation{}
		}
	}
}

func mustWrite(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, []byte("*** System restart required ***\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherCreateDeleteRename(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "reboot-required")
	obs := watch(t, p)
	if o := next(t, obs); o.Status != v1.ConditionFalse {
		t.Fatalf("first observation %v, want False", o)
	}

	mustWrite(t, p)
	waitStatus(t, obs, v1.ConditionTrue)

	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, obs, v1.ConditionFalse)

	// Rename into place, as package managers do.
	tmp := filepath.Join(dir, ".reboot-required.tmp")
	mustWrite(t, tmp)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, obs, v1.ConditionTrue)

	// Renamed away.
	if err := os.Rename(p, filepath.Join(dir, "old")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, obs, v1.ConditionFalse)

	// Replaced by a folder.
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if o := waitStatus(t, obs, v1.ConditionUnknown); o.Reason != ReasonSentinelUnreadable {
		t.Fatalf("folder as sentinel: %v", o)
	}
}

func TestWatcherIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "reboot-required")
	obs := watch(t, p)
	next(t, obs) // the initial observation

	// Churn in the folder: none of it concerns the sentinel.
	for _, name := range []string{"a.pid", "b.sock", "reboot-required.tmp"} {
		mustWrite(t, filepath.Join(dir, name))
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// inotify delivers events in order: had the churn triggered, those
	// observations would come before the one of the rename.
	tmp := filepath.Join(dir, "staging")
	mustWrite(t, tmp)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if o := next(t, obs); o.Status != v1.ConditionTrue {
		t.Fatalf("first observation after churn and rename: %v, want the rename's (True)", o)
	}
}

func TestWatcherPackagesFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "reboot-required")
	mustWrite(t, p)
	obs := watch(t, p)
	if o := next(t, obs); o.Message != "Sentinel "+p+" is present" {
		t.Fatalf("initial: %v", o)
	}
	if err := os.WriteFile(p+PackagesSuffix, []byte("libc6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case o := <-obs:
			if o.Message == "Sentinel "+p+" is present; required by libc6" {
				return
			}
		case <-deadline:
			t.Fatal("the .pkgs file did not change the message")
		}
	}
}

func TestWatcherFolderRemovedAndRecreated(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "reboot-required")
	mustWrite(t, p)
	obs := watch(t, p)
	waitStatus(t, obs, v1.ConditionTrue)

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, obs, v1.ConditionFalse)

	for round := range 3 {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, p)
		waitStatus(t, obs, v1.ConditionTrue)
		if round == 1 {
			// Renamed away instead of removed: the old inode must not
			// keep being watched under the old name.
			if err := os.Rename(dir, filepath.Join(root, "run.old")); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, obs, v1.ConditionFalse)
			if err := os.RemoveAll(filepath.Join(root, "run.old")); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, obs, v1.ConditionFalse)
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWatcherFolderMissingAtStart(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "run")
	p := filepath.Join(dir, "reboot-required")
	obs := watch(t, p)
	if o := next(t, obs); o.Status != v1.ConditionFalse {
		t.Fatalf("initial %v, want False", o)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, p)
	waitStatus(t, obs, v1.ConditionTrue)
}

func TestWatchSet(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "x", "run")
	check := func(want ...string) {
		t.Helper()
		got := watchSet(dir)
		if len(got) != len(want) {
			t.Fatalf("watchSet = %v, want %v", got, want)
		}
		for _, w := range want {
			if !got[w] {
				t.Fatalf("watchSet = %v, want %v", got, want)
			}
		}
	}
	check(root)
	if err := os.MkdirAll(filepath.Join(root, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	check(filepath.Join(root, "x"))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	check(dir, filepath.Join(root, "x"))
	if got := watchSet("/"); !got["/"] || len(got) != 1 {
		t.Fatalf("watchSet(/) = %v", got)
	}
}

func TestIsAncestorOrSelf(t *testing.T) {
	for _, tc := range []struct {
		p, dir string
		want   bool
	}{
		{"/var/run", "/var/run", true},
		{"/var", "/var/run", true},
		{"/", "/var/run", true},
		{"/var/run/x", "/var/run", false},
		{"/var/r", "/var/run", false},
		{"/var/runner", "/var/run", false},
	} {
		if got := isAncestorOrSelf(tc.p, tc.dir); got != tc.want {
			t.Errorf("isAncestorOrSelf(%q, %q) = %v, want %v", tc.p, tc.dir, got, tc.want)
		}
	}
}
