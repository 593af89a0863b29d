package gates

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

// MaxAnswer caps the Prometheus answer read: a bigger one is an error (and
// so blocks), never read whole into memory.
const MaxAnswer = 16 << 20

// maxRedirects bounds the redirects followed (within one host).
const maxRedirects = 10

// maxQueryError caps the text of an error asking Prometheus, so that the
// controller's message quoting it stays within about sanitize.MaxMessage.
const maxQueryError = 800

// alertStateLabel is the label of ALERTS that says pending or firing.
const alertStateLabel model.LabelName = "alertstate"

// maxDetail caps the part of a failed answer's body quoted in an error.
const maxDetail = 200

// AlertChecker asks a Prometheus server for the alerts that block reboots,
// as kured does: the instant query ALERTS (every pending or firing alert of
// the server's rules), filtered by name and state. It uses client_golang's
// Prometheus API client.
type AlertChecker struct {
	// URL is the Prometheus server's base URL, e.g.
	// http://prometheus.monitoring:9090.
	URL string
	// Filter, when set, drops the alerts whose name it matches (with
	// MatchOnly: keeps only those).
	Filter *regexp.Regexp
	// MatchOnly inverts Filter: only matching alerts block.
	MatchOnly bool
	// FiringOnly ignores pending alerts.
	FiringOnly bool
	// Client sends the query (default: http.DefaultClient's transport);
	// its Transport may add credentials. Whatever its CheckRedirect says,
	// a redirect is followed only to the same scheme and host, and the
	// answer is read up to MaxAnswer bytes. Timeout bounds one query
	// (default 10s).
	Client  *http.Client
	Timeout time.Duration
}

// QueryError is a failure to get an answer from Prometheus. Its text is
// cleaned by sanitize (the server's error is quoted) and capped.
type QueryError struct {
	// URL is the server's base URL, its password redacted.
	URL string
	// Err is what went wrong.
	Err error
}

func (e *QueryError) Error() string {
	msg := e.Err.Error()
	var pe *promv1.Error
	if errors.As(e.Err, &pe) && pe.Detail != "" {
		msg += ": " + sanitize.Line(pe.Detail, maxDetail)
	}
	return sanitize.Line(fmt.Sprintf("query ALERTS at %s: %s", e.URL, msg), maxQueryError)
}

// Unwrap returns the underlying error.
func (e *QueryError) Unwrap() error { return e.Err }

// Active returns the sorted names of the alerts that block reboots now. An
// error (a *QueryError) means Prometheus could not be asked or answered
// nonsense: the caller must treat that as blocking (fail safe).
func (a *AlertChecker) Active(ctx context.Context) ([]string, error) {
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u, err := url.Parse(a.URL)
	if err != nil {
		return nil, &QueryError{URL: sanitize.Line(a.URL, 200), Err: fmt.Errorf("bad Prometheus URL: %w", err)}
	}
	fail := func(err error) error { return &QueryError{URL: u.Redacted(), Err: err} }
	client, err := api.NewClient(api.Config{Address: u.String(), Client: a.httpClient()})
	if err != nil {
		return nil, fail(err)
	}
	val, _, err := promv1.NewAPI(client).Query(ctx, "ALERTS", time.Time{})
	if err != nil {
		return nil, fail(err)
	}
	vec, ok := val.(model.Vector)
	if !ok {
		return nil, fail(fmt.Errorf("result type %s, want vector", val.Type()))
	}
	return a.blocking(vec), nil
}

// blocking returns the sorted, distinct names of the alerts in vec that
// block reboots.
func (a *AlertChecker) blocking(vec model.Vector) []string {
	set := map[string]bool{}
	for _, s := range vec {
		name := string(s.Metric[model.AlertNameLabel])
		if name == "" || s.Value == 0 {
			continue
		}
		if a.Filter != nil && a.Filter.MatchString(name) != a.MatchOnly {
			continue
		}
		if a.FiringOnly && s.Metric[alertStateLabel] != "firing" {
			continue
		}
		set[name] = true
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// httpClient is a copy of the configured client that follows redirects
// only within the same scheme and host, and reads at most MaxAnswer bytes.
func (a *AlertChecker) httpClient() *http.Client {
	c := http.Client{}
	if a.Client != nil {
		c = *a.Client
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = cappedTransport{base: base, limit: MaxAnswer}
	c.CheckRedirect = sameOrigin
	return &c
}

// sameOrigin is an http.Client CheckRedirect: a redirect to another scheme
// or host is refused (a compromised or misconfigured Prometheus, or a proxy
// in front of it, must not send the controller, with its credentials, to
// another server).
func sameOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	from := via[0].URL
	if req.URL.Scheme != from.Scheme || !strings.EqualFold(req.URL.Host, from.Host) {
		return fmt.Errorf("redirect from %s://%s to %s://%s refused: not the same scheme and host",
			from.Scheme, from.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// cappedTransport fails the read of an answer longer than limit bytes.
type cappedTransport struct {
	base  http.RoundTripper
	limit int64
}

func (t cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		resp.Body = &cappedBody{ReadCloser: resp.Body, left: t.limit, limit: t.limit}
	}
	return resp, err
}

// cappedBody reads at most left bytes, then fails.
type cappedBody struct {
	io.ReadCloser
	left, limit int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more than allowed tells a body of exactly the limit
		// from a longer one.
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("answer longer than %d bytes", b.limit)
		}
		return 0, err // io.EOF at the end
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// AlertsMessage explains a block by active alerts: their names cleaned by
// sanitize (an alert's name is whatever a rule says) and the message capped
// at sanitize.MaxMessage bytes.
func AlertsMessage(names []string) string {
	const prefix = "active Prometheus alerts: "
	return prefix + sanitize.List(names, 0, sanitize.MaxMessage-len(prefix))
}
