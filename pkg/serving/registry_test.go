package serving

import (
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/nodereboot/nodereboot/pkg/version"
)

// /metrics of a binary's registry names its build.
func TestBuildInfoOnMetrics(t *testing.T) {
	srv := httptest.NewServer(New("127.0.0.1:0", NewRegistry("nodereboot-test")).Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `nodereboot_build_info{component="nodereboot-test",goversion="` + runtime.Version() + `",version="` + version.Version + `"} 1`
	if !strings.Contains(string(body), want) {
		t.Fatalf("/metrics does not have %s:\n%s", want, body)
	}
	if !strings.Contains(string(body), "go_goroutines") || !strings.Contains(string(body), "process_") {
		t.Errorf("/metrics lacks the Go runtime or process metrics")
	}
}
