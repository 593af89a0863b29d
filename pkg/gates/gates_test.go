package gates

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

func pod(ns, name, node string, phase v1.PodPhase, labels map[string]string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: v1.PodSpec{NodeName: node}, Status: v1.PodStatus{Phase: phase}}
}

func TestNewPodBlocker(t *testing.T) {
	if b, err := NewPodBlocker(nil); b != nil || err != nil {
		t.Errorf("no selectors: %v, %v; want nil, nil", b, err)
	}
	for _, bad := range []string{"a b c", "", "x in (y"} {
		if _, err := NewPodBlocker([]string{"app=ok", bad}); err == nil {
			t.Errorf("selector %q accepted", bad)
		}
	}
	b, err := NewPodBlocker([]string{"app=backup", "team in (db),critical"})
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != "app=backup | critical,team in (db)" {
		t.Errorf("String() = %q", b.String())
	}
}

func TestPodBlockerMatch(t *testing.T) {
	b, err := NewPodBlocker([]string{"app=backup", "team=db,critical=true"})
	if err != nil {
		t.Fatal(err)
	}
	pods := []*v1.Pod{
		pod("a", "backup-1", "n1", v1.PodRunning, map[string]string{"app": "backup"}),
		pod("a", "backup-done", "n1", v1.PodSucceeded, map[string]string{"app": "backup"}),
		pod("a", "backup-failed", "n1", v1.PodFailed, map[string]string{"app": "backup"}),
		pod("b", "db-0", "n1", v1.PodPending, map[string]string{"team": "db", "critical": "true"}),
		pod("b", "db-1", "n1", v1.PodRunning, map[string]string{"team": "db"}),
		pod("c", "web", "n1", v1.PodRunning, map[string]string{"app": "web"}),
		pod("a", "backup-elsewhere", "n2", v1.PodRunning, map[string]string{"app": "backup"}),
	}
	if got, want := b.Match("n1", pods), []string{"a/backup-1", "b/db-0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Match = %v, want %v", got, want)
	}
	if got := b.Match("n1", nil); len(got) != 0 {
		t.Errorf("Match(nil) = %v", got)
	}
}

// List asks the API server with a field selector on the node (and the
// phase) and the label selector, one request per selector.
func TestPodBlockerList(t *testing.T) {
	client := fake.NewClientset(
		pod("a", "backup-1", "n1", v1.PodRunning, map[string]string{"app": "backup"}),
		pod("a", "backup-2", "n2", v1.PodRunning, map[string]string{"app": "backup"}),
		pod("b", "db-0", "n1", v1.PodRunning, map[string]string{"team": "db"}),
	)
	var lists []string
	client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.ListActionImpl).GetListRestrictions()
		lists = append(lists, r.Fields.String()+" "+r.Labels.String())
		return false, nil, nil
	})
	b, err := NewPodBlocker([]string{"app=backup", "team=db"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.List(context.Background(), client, "n1")
	if err != nil {
		t.Fatal(err)
	}
	// The fake ignores field selectors; List filters by node itself too.
	if want := []string{"a/backup-1", "b/db-0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	if len(lists) != 2 {
		t.Fatalf("%d list requests, want 2 (one per selector): %v", len(lists), lists)
	}
	for _, l := range lists {
		if !strings.Contains(l, "spec.nodeName=n1") || !strings.Contains(l, "status.phase!=Succeeded") {
			t.Errorf("list without the node's field selector: %q", l)
		}
	}
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, fmt.Errorf("boom")
	})
	if _, err := b.List(context.Background(), client, "n1"); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("List error = %v", err)
	}
}

func TestPaused(t *testing.T) {
	cm := func(ann map[string]string) *v1.ConfigMap {
		return &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: contract.ConfigMapName, Annotations: ann}}
	}
	for _, tc := range []struct {
		cm     *v1.ConfigMap
		paused bool
		reason string
	}{
		{nil, false, ""},
		{cm(nil), false, ""},
		{cm(map[string]string{contract.AnnotationPaused: "false"}), false, ""},
		{cm(map[string]string{contract.AnnotationPaused: "yes"}), false, ""},
		{cm(map[string]string{contract.AnnotationPaused: "true"}), true, ""},
		{cm(map[string]string{contract.AnnotationPaused: "true", contract.AnnotationPausedReason: "incident 42"}), true, "incident 42"},
		{cm(map[string]string{contract.AnnotationPaused: "true", contract.AnnotationPausedReason: "freeze\x1b[2J\nuntil\tmonday\u202e"}),
			true, `freeze\x1b[2J until monday\u202e`},
		{cm(map[string]string{contract.AnnotationPaused: "true", contract.AnnotationPausedReason: strings.Repeat("r", 2000)}),
			true, strings.Repeat("r", MaxPausedReason-3) + "..."},
	} {
		if p, r := Paused(tc.cm); p != tc.paused || r != tc.reason {
			t.Errorf("Paused(%v) = %t, %q; want %t, %q", tc.cm, p, r, tc.paused, tc.reason)
		}
	}
}

// The pause watch follows the ConfigMap as it is created, annotated and
// deleted.
func TestPauseWatch(t *testing.T) {
	client := fake.NewClientset()
	changes := make(chan struct{}, 10)
	w := NewPauseWatch(client, "ns", func() { changes <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); w.Shutdown() }()
	w.Start(ctx)
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if !w.WaitForSync(sctx) || !w.HasSynced() {
		t.Fatal("not synced")
	}
	deadline := time.After(10 * time.Second)
	if p, _ := w.Paused(); p {
		t.Fatal("paused without a ConfigMap")
	}
	wait := func(want bool) {
		t.Helper()
		for {
			select {
			case <-changes:
				if p, _ := w.Paused(); p == want {
					return
				}
			case <-deadline:
				t.Fatalf("paused never became %t", want)
			}
		}
	}
	cms := client.CoreV1().ConfigMaps("ns")
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: contract.ConfigMapName, Annotations: map[string]string{contract.AnnotationPaused: "true"}}}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(true)
	cm.Annotations[contract.AnnotationPaused] = "false"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(false)
	cm.Annotations[contract.AnnotationPaused] = "true"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(true)
	if err := cms.Delete(ctx, contract.ConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(false)
}

// A stub of Prometheus' query API.
func promStub(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prom/api/v1/query" || r.FormValue("query") != "ALERTS" {
			t.Errorf("unexpected request %s", r.URL)
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

const alertsBody = `{"status":"success","data":{"resultType":"vector","result":[
 {"metric":{"__name__":"ALERTS","alertname":"NodeDown","alertstate":"firing","instance":"a"},"value":[1700000000,"1"]},
 {"metric":{"__name__":"ALERTS","alertname":"NodeDown","alertstate":"firing","instance":"b"},"value":[1700000000,"1"]},
 {"metric":{"__name__":"ALERTS","alertname":"DiskFilling","alertstate":"pending"},"value":[1700000000,"1"]},
 {"metric":{"__name__":"ALERTS","alertname":"Watchdog","alertstate":"firing"},"value":[1700000000,"1"]}
]}}`

func TestAlertChecker(t *testing.T) {
	srv := promStub(t, 200, alertsBody)
	for _, tc := range []struct {
		name       string
		filter     string
		matchOnly  bool
		firingOnly bool
		want       []string
	}{
		{name: "all active alerts, each once", want: []string{"DiskFilling", "NodeDown", "Watchdog"}},
		{name: "filter drops matching alerts", filter: "^Watchdog$", want: []string{"DiskFilling", "NodeDown"}},
		{name: "match only keeps matching alerts", filter: "Node|Disk", matchOnly: true, want: []string{"DiskFilling", "NodeDown"}},
		{name: "firing only", firingOnly: true, want: []string{"NodeDown", "Watchdog"}},
		{name: "firing only and filter", filter: "Watchdog", firingOnly: true, want: []string{"NodeDown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &AlertChecker{URL: srv.URL + "/prom", MatchOnly: tc.matchOnly, FiringOnly: tc.firingOnly}
			if tc.filter != "" {
				a.Filter = regexp.MustCompile(tc.filter)
			}
			got, err := a.Active(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Active = %v, want %v", got, tc.want)
			}
		})
	}
	if m := AlertsMessage([]string{"A", "B"}); m != "active Prometheus alerts: A, B" {
		t.Errorf("message %q", m)
	}
}

func TestAlertCheckerNoAlerts(t *testing.T) {
	srv := promStub(t, 200, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	got, err := (&AlertChecker{URL: srv.URL + "/prom/"}).Active(context.Background())
	if err != nil || len(got) != 0 {
		t.Errorf("Active = %v, %v; want none", got, err)
	}
}

// Every way of not getting an answer is an error (the controller blocks on
// it: fail safe).
func TestAlertCheckerErrors(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The query comes as a POST: read its body, or the server does
		// not notice the client giving up and the handler never ends.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for _, tc := range []struct {
		name, url, want string
	}{
		{"server error", promStub(t, 503, `{"status":"error","errorType":"unavailable","error":"starting"}`).URL + "/prom", "503"},
		{"bad query", promStub(t, 400, `{"status":"error","errorType":"bad_data","error":"parse error"}`).URL + "/prom", "parse error"},
		{"not JSON", promStub(t, 200, `<html>proxy login</html>`).URL + "/prom", "bad_response"},
		{"not JSON, with an error code", promStub(t, 502, `<html>bad gateway</html>`).URL + "/prom", "server error: 502: <html>bad gateway</html>"},
		{"wrong result type", promStub(t, 200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`).URL + "/prom", "matrix"},
		{"connection refused", closedURL, "connect"},
		{"timeout", hang.URL, "deadline"},
		{"bad URL", "http://[::1", "bad Prometheus URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &AlertChecker{URL: tc.url, Timeout: 200 * time.Millisecond}
			_, err := a.Active(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPodsMessage(t *testing.T) {
	if m := PodsMessage([]string{"a/1", "a/2"}); !strings.HasSuffix(m, ": a/1, a/2") {
		t.Errorf("%q", m)
	}
	if m := PodsMessage([]string{"1", "2", "3", "4", "5", "6", "7"}); !strings.HasSuffix(m, "1, 2, 3, 4, 5 and 2 more") {
		t.Errorf("%q", m)
	}
	long := []string{strings.Repeat("a", 253) + "/" + strings.Repeat("p", 253), strings.Repeat("b", 253) + "/" + strings.Repeat("p", 253),
		strings.Repeat("c", 253) + "/" + strings.Repeat("p", 253)}
	if m := PodsMessage(long); len(m) > sanitize.MaxMessage || !strings.HasSuffix(m, " and 2 more") {
		t.Errorf("%d bytes: %q", len(m), m)
	}
}
