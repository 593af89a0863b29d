package gates

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

// hasControl reports whether s holds a control or format character.
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0
}

// A redirect to another host (here: another port) is refused, and that
// host is never asked; within the same host a redirect is followed.
func TestAlertCheckerRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	t.Cleanup(other.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away/api/v1/query":
			http.Redirect(w, r, other.URL+"/api/v1/query", http.StatusTemporaryRedirect)
		case "/moved/api/v1/query":
			http.Redirect(w, r, "/prom/api/v1/query", http.StatusPermanentRedirect)
		case "/prom/api/v1/query":
			if r.FormValue("query") != "ALERTS" {
				t.Errorf("query %q lost in the redirect", r.FormValue("query"))
			}
			fmt.Fprint(w, alertsBody)
		}
	}))
	t.Cleanup(redirector.Close)

	_, err := (&AlertChecker{URL: redirector.URL + "/away"}).Active(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refused: not the same scheme and host") {
		t.Errorf("cross-host redirect: %v, want refused", err)
	}
	// Even with a client that follows every redirect.
	follow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	if _, err := (&AlertChecker{URL: redirector.URL + "/away", Client: follow}).Active(context.Background()); err == nil {
		t.Error("cross-host redirect followed with a permissive client")
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host was asked %d times", n)
	}
	got, err := (&AlertChecker{URL: redirector.URL + "/moved"}).Active(context.Background())
	if err != nil || len(got) != 3 {
		t.Errorf("same-host redirect: %v, %v; want the 3 alerts", got, err)
	}
}

// An answer longer than MaxAnswer is an error, not read whole.
func TestAlertCheckerCapsTheAnswer(t *testing.T) {
	pad := strings.Repeat(" ", MaxAnswer)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, pad+`{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	t.Cleanup(srv.Close)
	_, err := (&AlertChecker{URL: srv.URL}).Active(context.Background())
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("answer longer than %d bytes", MaxAnswer)) {
		t.Errorf("error %v, want the answer refused as too long", err)
	}
	// Exactly the limit is read.
	exact := strings.Repeat(" ", MaxAnswer-len(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, exact+`{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	t.Cleanup(ok.Close)
	if _, err := (&AlertChecker{URL: ok.URL}).Active(context.Background()); err != nil {
		t.Errorf("an answer of exactly %d bytes: %v", MaxAnswer, err)
	}
}

// Alert names and the server's errors are cleaned and capped before they
// reach a message: an alert rule or a proxy cannot put an escape sequence
// into an event, a notification or a terminal.
func TestAlertCheckerCleansText(t *testing.T) {
	evil := `Evil\u001b]0;owned\u0007\u009b\u202e` + strings.Repeat("x", 3000)
	srv := promStub(t, 200, `{"status":"success","data":{"resultType":"vector","result":[
 {"metric":{"alertname":"`+evil+`","alertstate":"firing"},"value":[1700000000,"1"]},
 {"metric":{"alertname":"Fine","alertstate":"firing"},"value":[1700000000,"1"]}]}}`)
	names, err := (&AlertChecker{URL: srv.URL + "/prom"}).Active(context.Background())
	if err != nil || len(names) != 2 {
		t.Fatalf("Active = %q, %v", names, err)
	}
	msg := AlertsMessage(names)
	if hasControl(msg) || len(msg) > sanitize.MaxMessage || !strings.HasPrefix(msg, `active Prometheus alerts: Evil\x1b]0;owned\x07\u009b\u202exxx`) {
		t.Errorf("message %q... (%d bytes)", msg[:min(len(msg), 80)], len(msg))
	}

	bad := promStub(t, 400, `{"status":"error","errorType":"bad_data","error":"parse error \u001b[2J`+strings.Repeat("y", 3000)+`"}`)
	_, err = (&AlertChecker{URL: bad.URL + "/prom"}).Active(context.Background())
	if err == nil || hasControl(err.Error()) || len(err.Error()) > maxQueryError || !strings.Contains(err.Error(), `parse error \x1b[2J`) {
		t.Errorf("error %q, want it cleaned and capped", err)
	}
	html := promStub(t, 503, "<html>\n\x1b[31mdown\x1b[0m\n"+strings.Repeat("z", 3000))
	_, err = (&AlertChecker{URL: html.URL + "/prom"}).Active(context.Background())
	if err == nil || hasControl(err.Error()) || len(err.Error()) > maxQueryError || !strings.Contains(err.Error(), `503: <html> \x1b[31mdown`) {
		t.Errorf("error %q, want it cleaned and capped", err)
	}
}

func TestAlertsMessage(t *testing.T) {
	if m := AlertsMessage([]string{"A", "B"}); m != "active Prometheus alerts: A, B" {
		t.Errorf("message %q", m)
	}
	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprintf("SomeRatherLongAlertName%03d", i))
	}
	if m := AlertsMessage(many); len(m) > sanitize.MaxMessage || !strings.HasSuffix(m, " more") {
		t.Errorf("message of %d bytes: %q", len(m), m)
	}
}

// Credentials in the URL are sent as basic auth and never quoted in an
// error.
func TestAlertCheckerURLCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "reader" || p != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	withCreds := strings.Replace(srv.URL, "http://", "http://reader:s3cret@", 1)
	_, err := (&AlertChecker{URL: withCreds}).Active(context.Background())
	if err == nil || !strings.Contains(err.Error(), "500") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v: want the 500 (credentials accepted), without the password", err)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	_, err = (&AlertChecker{URL: strings.Replace(closed.URL, "http://", "http://reader:s3cret@", 1)}).Active(context.Background())
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("connection error %v quotes the password", err)
	}
}
