package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/nicholas-fedor/shoutrrr"
	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
	"k8s.io/klog/v2"
)

// Results of a notification, the label values of
// nodereboot_notifications_total.
const (
	ResultSent    = "sent"    // every service accepted it
	ResultFailed  = "failed"  // a service refused it, timed out, or the template failed
	ResultDropped = "dropped" // the queue was full: a backlog of unsent messages
)

// Results lists every result.
var Results = []string{ResultSent, ResultFailed, ResultDropped}

// DefaultTemplates are the messages of each step when no template is given.
var DefaultTemplates = map[Step]string{
	StepDrain:    `Draining node {{.Node}} for a reboot.`,
	StepReboot:   `Rebooting node {{.Node}}.`,
	StepUncordon: `Node {{.Node}} has rebooted and is back in service.`,
	StepFailure:  `Reboot of node {{.Node}} failed ({{.Reason}}): {{.Message}}`,
}

// Config configures a Sender.
type Config struct {
	// URLs are shoutrrr service URLs, e.g. slack://token@channel or
	// generic+https://example.com/hook; each message goes to all.
	URLs []string
	// Template, when set, formats every step (a Go template over Event:
	// .Step, .Node, .Reason, .Message, .Time); StepTemplates override it
	// per step; DefaultTemplates are used otherwise.
	Template      string
	StepTemplates map[Step]string
	// Title is the message title for services that have one (default
	// "nodereboot").
	Title string
	// Timeout bounds the sending of one message (default 10s).
	Timeout time.Duration
	// QueueSize bounds the messages waiting to be sent (default 100);
	// beyond it new ones are dropped.
	QueueSize int
	// OnResult, if set, is called with the result of every message (for
	// metrics).
	OnResult func(result string)
}

// Sender sends notifications in the background. Notify never blocks.
type Sender struct {
	router    *router.ServiceRouter
	templates map[Step]*template.Template
	title     string
	queue     chan Event
	onResult  func(string)
}

// ParseTemplate parses a message template and checks it formats an
// example event.
func ParseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	example := Event{Step: StepFailure, Node: "node-1", Reason: "DrainFailed", Message: "example", Time: time.Unix(0, 0).UTC()}
	if err := t.Execute(new(strings.Builder), example); err != nil {
		return nil, err
	}
	return t, nil
}

// TemplateError is a Config error about a template; Step is "" for
// Config.Template.
type TemplateError struct {
	Step Step
	Err  error
}

func (e *TemplateError) Error() string { return e.Err.Error() }

// URLError is a Config error about the service URLs.
type URLError struct{ Err error }

func (e *URLError) Error() string { return e.Err.Error() }

// New checks the configuration and returns a Sender (nil, nil when there
// are no URLs). Nothing is sent before Run.
func New(cfg Config) (*Sender, error) {
	if len(cfg.URLs) == 0 {
		return nil, nil
	}
	s := &Sender{templates: map[Step]*template.Template{}, title: cfg.Title, onResult: cfg.OnResult}
	if s.title == "" {
		s.title = "nodereboot"
	}
	if s.onResult == nil {
		s.onResult = func(string) {}
	}
	for _, step := range Steps {
		text, which := DefaultTemplates[step], step
		if cfg.Template != "" {
			text, which = cfg.Template, ""
		}
		if st, ok := cfg.StepTemplates[step]; ok && st != "" {
			text, which = st, step
		}
		t, err := ParseTemplate(string(step), text)
		if err != nil {
			return nil, &TemplateError{Step: which, Err: err}
		}
		s.templates[step] = t
	}
	r, err := shoutrrr.CreateSender(cfg.URLs...)
	if err != nil {
		return nil, &URLError{Err: err}
	}
	r.Timeout = cfg.Timeout
	if r.Timeout <= 0 {
		r.Timeout = router.DefaultTimeout
	}
	s.router = r
	size := cfg.QueueSize
	if size <= 0 {
		size = 100
	}
	s.queue = make(chan Event, size)
	return s, nil
}

// OnResult sets the function called with the result of every message (for
// metrics), replacing Config.OnResult; call it before Run.
func (s *Sender) OnResult(f func(result string)) { s.onResult = f }

// Notify queues a notification; when the queue is full it is dropped
// (logged and counted), never waited for.
func (s *Sender) Notify(ev Event) {
	select {
	case s.queue <- ev:
	default:
		klog.Background().Info("Notification dropped: queue full", "step", ev.Step, "node", ev.Node)
		s.onResult(ResultDropped)
	}
}

// Run sends the queued notifications, one at a time, until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("notify")
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-s.queue:
			if err := s.send(ev); err != nil {
				logger.Info("Notification failed", "step", ev.Step, "node", ev.Node, "err", err)
				s.onResult(ResultFailed)
				continue
			}
			logger.V(2).Info("Notification sent", "step", ev.Step, "node", ev.Node)
			s.onResult(ResultSent)
		}
	}
}

// send formats and sends one notification to every service (each bounded
// by the timeout).
func (s *Sender) send(ev Event) error {
	t := s.templates[ev.Step]
	if t == nil {
		return fmt.Errorf("no template for step %q", ev.Step)
	}
	ev = ev.clean()
	var b strings.Builder
	if err := t.Execute(&b, ev); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	return errors.Join(s.router.Send(b.String(), &types.Params{"title": s.title})...)
}
