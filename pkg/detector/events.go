package detector

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

// eventRecorder is a record.EventRecorder whose Stop waits (for a bounded
// time) until the events recorded so far reached the API server, so that the
// Rebooting event is not lost when the reboot stops the detector.
type eventRecorder struct {
	record.EventRecorder
	broadcaster record.EventBroadcaster

	mu       sync.Mutex
	recorded int
	sunk     int
	changed  chan struct{}
}

// newEventRecorder starts an event broadcaster that writes to the core/v1
// events API as component contract.DetectorComponent on host nodeName.
func newEventRecorder(ctx context.Context, client Client, nodeName string) *eventRecorder {
	r := &eventRecorder{changed: make(chan struct{})}
	ctx = context.WithoutCancel(ctx)
	r.broadcaster = record.NewBroadcaster(record.WithContext(ctx))
	r.broadcaster.StartStructuredLogging(4)
	r.broadcaster.StartRecordingToSink(&countingSink{
		EventSink: client.EventSink(ctx),
		done:      r.done,
	})
	r.EventRecorder = r.broadcaster.NewRecorder(client.Scheme(), v1.EventSource{Component: contract.DetectorComponent, Host: nodeName})
	return r
}

// Eventf records an event and counts it. The message is cleaned and capped
// by sanitize.Message: it may quote a package list, a command's output or an
// annotation's value.
func (r *eventRecorder) Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	r.mu.Lock()
	r.recorded++
	r.mu.Unlock()
	r.EventRecorder.Event(object, eventtype, reason, sanitize.Message(fmt.Sprintf(messageFmt, args...)))
}

// Event records an event and counts it.
func (r *eventRecorder) Event(object runtime.Object, eventtype, reason, message string) {
	r.Eventf(object, eventtype, reason, "%s", message)
}

func (r *eventRecorder) done() {
	r.mu.Lock()
	r.sunk++
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Stop waits up to timeout for the recorded events to be written (best
// effort: an event the correlator drops as spam, or that the API server
// refuses, is never written, and then it waits the whole timeout), then
// shuts the broadcaster down.
func (r *eventRecorder) Stop(timeout time.Duration) {
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		pending, changed := r.recorded-r.sunk, r.changed
		r.mu.Unlock()
		if pending <= 0 {
			break
		}
		select {
		case <-changed:
			continue
		case <-deadline:
		}
		break
	}
	r.broadcaster.Shutdown()
}

// countingSink calls done after every successful write. The broadcaster
// writes each event once when the API server answers (a failed patch of an
// aggregated event falls back to a create), so successes count events.
type countingSink struct {
	record.EventSink
	done func()
}

func (s *countingSink) count(e *v1.Event, err error) (*v1.Event, error) {
	if err == nil {
		s.done()
	}
	return e, err
}

// Create writes a new event.
func (s *countingSink) Create(e *v1.Event) (*v1.Event, error) { return s.count(s.EventSink.Create(e)) }

// Update rewrites an event.
func (s *countingSink) Update(e *v1.Event) (*v1.Event, error) { return s.count(s.EventSink.Update(e)) }

// Patch updates the count of an aggregated event.
func (s *countingSink) Patch(e *v1.Event, p []byte) (*v1.Event, error) {
	return s.count(s.EventSink.Patch(e, p))
}
