package sentinel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"
)

// FileWatcher calls a function whenever the sentinel may have changed. It
// watches the sentinel's parent folder, not the file: the file is created,
// deleted and renamed into place, and an inotify watch on a file does not
// survive that. It also watches the nearest existing ancestor of that folder,
// so that when the folder is removed and recreated the watch on it is added
// again. Changes of other files in these folders are ignored.
type FileWatcher struct {
	// Path is the sentinel's path. Events on Path, on Path+PackagesSuffix and
	// on the folders above Path count.
	Path string
}

// Run watches until ctx is cancelled. It calls changed once at the start
// (after the watches are set up, so no change can fall between the first
// look and the watch) and after every relevant event; changed must not
// block. It returns an error only when the watcher cannot be created.
func (w FileWatcher) Run(ctx context.Context, changed func()) error {
	logger := klog.FromContext(ctx).WithValues("sentinel", w.Path)
	path := filepath.Clean(w.Path)
	dir := filepath.Dir(path)

	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("create inotify watcher: %w", err)
	}
	defer fw.Close()

	watched := map[string]bool{}
	// sync makes the watches match watchSet. A folder created between the
	// stat in watchSet and the watch on its parent raises no event, so sync
	// repeats until the set is stable.
	sync := func() {
		for range 8 {
			want := watchSet(dir)
			stable := true
			for p := range watched {
				if !want[p] {
					_ = fw.Remove(p)
					delete(watched, p)
					stable = false
				}
			}
			for p := range want {
				if watched[p] {
					continue
				}
				stable = false
				if err := fw.Add(p); err != nil {
					// It vanished between the stat and the add: the
					// next event in its parent brings it back.
					logger.V(2).Info("Cannot watch folder", "folder", p, "err", err)
					continue
				}
				logger.V(4).Info("Watching folder", "folder", p)
				watched[p] = true
			}
			if stable {
				return
			}
		}
	}
	// forget drops the watches on p and below: p was removed or renamed,
	// and a folder of the same name that appears later is another inode.
	forget := func(p string) {
		for q := range watched {
			if q == p || strings.HasPrefix(q, p+string(filepath.Separator)) {
				_ = fw.Remove(q)
				delete(watched, q)
			}
		}
	}

	sync()
	changed()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			switch {
			case ev.Name == path || ev.Name == path+PackagesSuffix:
				logger.V(4).Info("Sentinel event", "event", ev.String())
				changed()
			case isAncestorOrSelf(ev.Name, dir):
				logger.V(4).Info("Folder event", "event", ev.String())
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					forget(ev.Name)
				}
				sync()
				changed()
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events: look again. Other errors are
			// reported; the resync period is the fallback.
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				logger.Info("Inotify queue overflowed; looking again")
			} else {
				logger.Error(err, "Inotify error")
			}
			sync()
			changed()
		}
	}
}

// watchSet is the folders to watch for a sentinel in dir: dir itself when it
// is a folder, and the nearest existing folder above it (which reports dir
// being created, removed or renamed).
func watchSet(dir string) map[string]bool {
	want := map[string]bool{}
	if isDir(dir) {
		want[dir] = true
	}
	for p := dir; ; {
		parent := filepath.Dir(p)
		if parent == p {
			want[p] = true // the root
			break
		}
		if isDir(parent) {
			want[parent] = true
			break
		}
		p = parent
	}
	return want
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// isAncestorOrSelf reports whether p is dir or a folder above it.
func isAncestorOrSelf(p, dir string) bool {
	p = filepath.Clean(p)
	return p == dir || strings.HasPrefix(dir, p+string(filepath.Separator)) || (p == "/" && dir != "/")
}
