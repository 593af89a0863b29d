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
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("create inotify watcher: %w", err)
	}
	defer fw.Close()
	path := filepath.Clean(w.Path)
	ws := &watches{fw: fw, dir: filepath.Dir(path), watched: map[string]bool{},
		logger: klog.FromContext(ctx).WithValues("sentinel", w.Path)}
	ws.sync()
	changed()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			ws.event(ev, path, changed)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events: look again. Other errors are
			// reported; the resync period is the fallback.
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				ws.logger.Info("Inotify queue overflowed; looking again")
			} else {
				ws.logger.Error(err, "Inotify error")
			}
			ws.sync()
			changed()
		}
	}
}

// watches are the inotify watches on the sentinel's folder and the nearest
// existing folder above it.
type watches struct {
	fw      *fsnotify.Watcher
	dir     string
	watched map[string]bool
	logger  klog.Logger
}

// event handles one inotify event: the sentinel (or its packages file)
// changed, or a folder above it did (the watches follow).
func (ws *watches) event(ev fsnotify.Event, path string, changed func()) {
	switch {
	case ev.Name == path || ev.Name == path+PackagesSuffix:
		ws.logger.V(4).Info("Sentinel event", "event", ev.String())
		changed()
	case isAncestorOrSelf(ev.Name, ws.dir):
		ws.logger.V(4).Info("Folder event", "event", ev.String())
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			ws.forget(ev.Name)
		}
		ws.sync()
		changed()
	}
}

// sync makes the watches match watchSet. A folder created between the stat
// in watchSet and the watch on its parent raises no event, so sync repeats
// until the set is stable.
func (ws *watches) sync() {
	for range 8 {
		want := watchSet(ws.dir)
		stable := true
		for p := range ws.watched {
			if !want[p] {
				_ = ws.fw.Remove(p)
				delete(ws.watched, p)
				stable = false
			}
		}
		for p := range want {
			if ws.watched[p] {
				continue
			}
			stable = false
			if err := ws.fw.Add(p); err != nil {
				// It vanished between the stat and the add: the next
				// event in its parent brings it back.
				ws.logger.V(2).Info("Cannot watch folder", "folder", p, "err", err)
				continue
			}
			ws.logger.V(4).Info("Watching folder", "folder", p)
			ws.watched[p] = true
		}
		if stable {
			return
		}
	}
}

// forget drops the watches on p and below: p was removed or renamed, and a
// folder of the same name that appears later is another inode.
func (ws *watches) forget(p string) {
	for q := range ws.watched {
		if q == p || strings.HasPrefix(q, p+string(filepath.Separator)) {
			_ = ws.fw.Remove(q)
			delete(ws.watched, q)
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
