package gates

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
)

// AlertChecker asks a Prometheus server for the alerts that block reboots,
// as kured does: the instant query ALERTS (every pending or firing alert of
// the server's rules), filtered by name and state.
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
	// Client sends the query (default http.DefaultClient); Timeout bounds
	// it (default 10s).
	Client  *http.Client
	Timeout time.Duration
}

// queryResponse is the part of Prometheus' /api/v1/query answer read here.
type queryResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

// Active returns the sorted names of the alerts that block reboots now. An
// error means Prometheus could not be asked (or answered nonsense): the
// caller must treat that as blocking (fail safe).
func (a *AlertChecker) Active(ctx context.Context) ([]string, error) {
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u, err := url.Parse(a.URL)
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: %w", a.URL, err)
	}
	u = u.JoinPath("api", "v1", "query")
	u.RawQuery = url.Values{"query": {"ALERTS"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	client := a.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", u.Redacted(), err)
	}
	var qr queryResponse
	if err := json.Unmarshal(body, &qr); err != nil {
		return nil, fmt.Errorf("query %s: HTTP %d, not a Prometheus answer: %v", u.Redacted(), resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || qr.Status != "success" {
		return nil, fmt.Errorf("query %s: HTTP %d: %s %s", u.Redacted(), resp.StatusCode, qr.ErrorType, qr.Error)
	}
	if qr.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result type %q, want vector", u.Redacted(), qr.Data.ResultType)
	}
	set := map[string]bool{}
	for _, r := range qr.Data.Result {
		name, ok := r.Metric["alertname"]
		if !ok || sampleIsZero(r.Value[1]) {
			continue
		}
		if a.Filter != nil && a.Filter.MatchString(name) != a.MatchOnly {
			continue
		}
		if a.FiringOnly && r.Metric["alertstate"] != "firing" {
			continue
		}
		set[name] = true
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func sampleIsZero(v any) bool {
	s, ok := v.(string)
	return ok && (s == "0" || s == "0.0")
}

// AlertsMessage explains a block by active alerts.
func AlertsMessage(names []string) string {
	return "active Prometheus alerts: " + strings.Join(names, ", ")
}
