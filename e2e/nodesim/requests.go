package nodesim

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// RequestWatcher notices reboot requests (the request file being created or
// touched) for many simulated hosts with one inotify instance.
type RequestWatcher struct {
	w *fsnotify.Watcher

	mu    sync.Mutex
	files map[string]chan struct{} // request file → its host's wake-up
	dirs  map[string]int           // folder → hosts watching in it
	done  chan struct{}
}

// NewRequestWatcher starts a watcher; Close stops it.
func NewRequestWatcher() (*RequestWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	r := &RequestWatcher{w: w, files: map[string]chan struct{}{}, dirs: map[string]int{}, done: make(chan struct{})}
	go r.run()
	return r, nil
}

func (r *RequestWatcher) run() {
	defer close(r.done)
	for {
		select {
		case ev, ok := <-r.w.Events:
			if !ok {
				return
			}
			if !ev.Has(fsnotify.Create | fsnotify.Write | fsnotify.Chmod) {
				continue
			}
			r.mu.Lock()
			ch := r.files[ev.Name]
			r.mu.Unlock()
			if ch != nil {
				select {
				case ch <- struct{}{}:
				default: // a wake-up is pending already
				}
			}
		case err, ok := <-r.w.Errors:
			if !ok {
				return
			}
			fmt.Fprintf(os.Stderr, "nodesim: watch error: %v\n", err)
		}
	}
}

// watch returns a channel that receives a value when file is created or
// touched.
func (r *RequestWatcher) watch(file string) (<-chan struct{}, error) {
	dir := filepath.Dir(file)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dirs[dir] == 0 {
		if err := r.w.Add(dir); err != nil {
			return nil, err
		}
	}
	r.dirs[dir]++
	ch := make(chan struct{}, 1)
	r.files[file] = ch
	return ch, nil
}

func (r *RequestWatcher) unwatch(file string) {
	dir := filepath.Dir(file)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.files[file]; !ok {
		return
	}
	delete(r.files, file)
	if r.dirs[dir]--; r.dirs[dir] == 0 {
		delete(r.dirs, dir)
		_ = r.w.Remove(dir)
	}
}

// Close stops the watcher.
func (r *RequestWatcher) Close() {
	r.w.Close()
	<-r.done
}
