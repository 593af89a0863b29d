package notify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// hook is a local webhook that records what it receives.
type hook struct {
	*httptest.Server
	got  chan string
	hold chan struct{} // when not nil, requests wait for it
}

func newHook(t *testing.T, hold bool) *hook {
	t.Helper()
	h := &hook{got: make(chan string, 100)}
	if hold {
		h.hold = make(chan struct{})
	}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.hold != nil {
			select {
			case <-h.hold:
			case <-r.Context().Done():
				return
			}
		}
		b, _ := io.ReadAll(r.Body)
		h.got <- r.URL.Path + " " + string(b)
	}))
	t.Cleanup(func() {
		if h.hold != nil {
			close(h.hold)
		}
		h.Close()
	})
	return h
}

// url is the hook as a shoutrrr generic webhook URL.
func (h *hook) url(path string) string {
	return "generic+" + h.URL + path
}

func (h *hook) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-h.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return ""
	}
}

type results struct {
	mu     sync.Mutex
	counts map[string]int
	ch     chan string
}

func newResults() *results { return &results{counts: map[string]int{}, ch: make(chan string, 100)} }

func (r *results) add(res string) {
	r.mu.Lock()
	r.counts[res]++
	r.mu.Unlock()
	r.ch <- res
}

func (r *results) next(t *testing.T) string {
	t.Helper()
	select {
	case res := <-r.ch:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("no result")
		return ""
	}
}

func run(t *testing.T, s *Sender) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestNoURLsNoSender(t *testing.T) {
	if s, err := New(Config{}); s != nil || err != nil {
		t.Errorf("New without URLs = %v, %v", s, err)
	}
}

// Every step goes out through the webhook with its default or configured
// template; results are counted.
func TestTemplates(t *testing.T) {
	h := newHook(t, false)
	res := newResults()
	s, err := New(Config{URLs: []string{h.url("/hook")}, OnResult: res.add,
		Template:      `{{.Step}} {{.Node}} {{.Reason}}: {{.Message}}`,
		StepTemplates: map[Step]string{StepUncordon: `{{.Node}} is back ({{.Time.Format "2006"}})`}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	at := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	s.Notify(Event{Step: StepDrain, Node: "n1", Reason: "Draining", Message: "cordoned", Time: at})
	if got := h.next(t); got != "/hook drain n1 Draining: cordoned" {
		t.Errorf("drain: %q", got)
	}
	s.Notify(Event{Step: StepUncordon, Node: "n1", Reason: "RebootCompleted", Time: at})
	if got := h.next(t); got != "/hook n1 is back (2026)" {
		t.Errorf("uncordon: %q", got)
	}
	for range 2 {
		if r := res.next(t); r != ResultSent {
			t.Errorf("result %s", r)
		}
	}

	d, err := New(Config{URLs: []string{h.url("/d")}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, d)
	for _, tc := range []struct {
		ev   Event
		want string
	}{
		{Event{Step: StepDrain, Node: "n2"}, "/d Draining node n2 for a reboot."},
		{Event{Step: StepReboot, Node: "n2"}, "/d Rebooting node n2."},
		{Event{Step: StepUncordon, Node: "n2"}, "/d Node n2 has rebooted and is back in service."},
		{Event{Step: StepFailure, Node: "n2", Reason: "RebootTimeout", Message: "not back"}, "/d Reboot of node n2 failed (RebootTimeout): not back"},
	} {
		d.Notify(tc.ev)
		if got := h.next(t); got != tc.want {
			t.Errorf("default %s: %q, want %q", tc.ev.Step, got, tc.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		step Step
		tmpl bool
	}{
		{cfg: Config{URLs: []string{"generic+http://127.0.0.1:1/x"}, Template: "{{.Nod}}"}, tmpl: true},
		{cfg: Config{URLs: []string{"generic+http://127.0.0.1:1/x"}, Template: "{{"}, tmpl: true},
		{cfg: Config{URLs: []string{"generic+http://127.0.0.1:1/x"}, StepTemplates: map[Step]string{StepReboot: "{{.Nodes}}"}}, step: StepReboot, tmpl: true},
		{cfg: Config{URLs: []string{"nosuchservice://x"}}},
		{cfg: Config{URLs: []string{"::not a url"}}},
	} {
		_, err := New(tc.cfg)
		var te *TemplateError
		var ue *URLError
		switch {
		case tc.tmpl && (!errors.As(err, &te) || te.Step != tc.step):
			t.Errorf("%+v: %v, want a template error for step %q", tc.cfg, err, tc.step)
		case !tc.tmpl && !errors.As(err, &ue):
			t.Errorf("%+v: %v, want a URL error", tc.cfg, err)
		}
	}
}

// A slow service never blocks Notify: messages wait in the bounded queue,
// the overflow is dropped and counted; a message that takes longer than
// the timeout counts as failed.
func TestNeverBlocks(t *testing.T) {
	h := newHook(t, true)
	res := newResults()
	s, err := New(Config{URLs: []string{h.url("/slow")}, QueueSize: 2, Timeout: 300 * time.Millisecond, OnResult: res.add})
	if err != nil {
		t.Fatal(err)
	}
	// Not running yet: the queue takes two, the rest are dropped at once.
	start := time.Now()
	for range 5 {
		s.Notify(Event{Step: StepDrain, Node: "n1"})
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Notify blocked for %s", d)
	}
	for range 3 {
		if r := res.next(t); r != ResultDropped {
			t.Fatalf("result %s, want dropped", r)
		}
	}
	run(t, s)
	for range 2 {
		if r := res.next(t); r != ResultFailed {
			t.Errorf("result %s, want failed (timeout)", r)
		}
	}
}

func TestUnreachableServiceFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	res := newResults()
	s, err := New(Config{URLs: []string{"generic+" + u + "/x"}, OnResult: res.add})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	s.Notify(Event{Step: StepFailure, Node: "n1"})
	if r := res.next(t); r != ResultFailed {
		t.Errorf("result %s", r)
	}
	if !strings.Contains(strings.Join(Results, ","), ResultDropped) {
		t.Error("Results lacks dropped")
	}
}

// The fields of an event reach the service cleaned: a message quoting a
// Prometheus answer cannot inject a terminal escape or a line of its own;
// the template's own newline stays.
func TestFieldsCleaned(t *testing.T) {
	h := newHook(t, false)
	s, err := New(Config{URLs: []string{h.url("/c")}, Template: "{{.Node}} {{.Reason}}\n{{.Message}}"})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	s.Notify(Event{Step: StepFailure, Node: "n1", Reason: "Drain\aFailed",
		Message: "alerts: Evil\x1b[2J\nFAKE: all good \u009b\xff" + strings.Repeat("x", 2000)})
	got := h.next(t)
	want := "/c n1 Drain\\x07Failed\nalerts: Evil\\x1b[2J FAKE: all good \\u009b\\xffxxx"
	if !strings.HasPrefix(got, want) || len(got) > len("/c n1 Drain\\x07Failed\n")+1024 {
		t.Fatalf("sent %q (%d bytes), want it to start with %q and the message capped", got[:min(len(got), 120)], len(got), want)
	}
}
