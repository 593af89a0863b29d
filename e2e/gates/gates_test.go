package gates_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/harness"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// eventually checks cond every 100 ms until it holds or the deadline
// passes (for state only readable by asking: metrics, Prometheus).
func (e *env) eventually(what string, within time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		select {
		case <-tick.C:
		case <-e.ctx.Done():
			e.t.Fatalf("waiting for %s: %v", what, e.ctx.Err())
		}
	}
}

func (e *env) metricIs(c *controller, sample string, want float64) func() bool {
	return func() bool {
		v, err := c.metric(sample)
		return err == nil && v == want
	}
}

func blockedMetric(reason string) string {
	return fmt.Sprintf("nodereboot_reboot_blocked{reason=%q}", reason)
}

// A reboot window computed around now (HH:MM:SS in UTC): before it opens
// nothing is taken and RebootBlocked says when it opens; the oldest request
// is taken when it opens; the window closes while that node's drain is held
// up by a budget: the node finishes, the next one waits for tomorrow's
// window.
func TestRebootWindow(t *testing.T) {
	e := setup(t, 3, 4*time.Minute)
	e.pinWorkload("pinned", "node-0", 1)
	open := time.Now().Add(8 * time.Second).Truncate(time.Second)
	closes := open.Add(15 * time.Second)
	c := e.startController("controller", "--start-time="+open.UTC().Format("15:04:05"),
		"--end-time="+closes.UTC().Format("15:04:05"), "--time-zone=UTC")
	e.request("node-0")
	e.waitNode("node-0", conditionTrue, "condition True")
	e.request("node-1")
	e.waitEvent("node-0", contract.ReasonRebootBlocked, "outside the reboot window", "opens at "+contract.FormatTime(open))
	e.eventually("reboot_blocked{OutsideRebootWindow} 1", 5*time.Second, e.metricIs(c, blockedMetric("OutsideRebootWindow"), 1))

	n := e.waitNode("node-0", out, "taken when the window opens")
	since, err := contract.ParseTime(n.Annotations[contract.AnnotationStateSince])
	if err != nil {
		t.Fatal(err)
	}
	if since.Before(open) || since.After(open.Add(2*time.Second)) {
		t.Errorf("taken at %s, the window opens at %s", since, open)
	}
	if n1, _ := e.h.Cluster.Client.CoreV1().Nodes().Get(e.ctx, "node-1", metav1.GetOptions{}); out(n1) {
		t.Errorf("node-1 taken as well")
	}
	// The scenario needs the window to be over before the drain can end:
	// wait for the wall clock, not for the system under test.
	select {
	case <-time.After(time.Until(closes)):
	case <-e.ctx.Done():
		t.Fatal(e.ctx.Err())
	}
	e.deletePDB("pinned")
	e.waitNode("node-0", rebootDone, "the node taken inside the window finishes after it closed")
	e.waitEvent("node-1", contract.ReasonRebootBlocked, "outside the reboot window", "opens at "+contract.FormatTime(open.Add(24*time.Hour)))
	e.eventually("an admission pass after node-0 finished (Queued 1, none out)", 10*time.Second, func() bool {
		q, err1 := c.metric(`nodereboot_nodes{state="Queued"}`)
		d, err2 := c.metric(`nodereboot_nodes{state="Draining"}`)
		return err1 == nil && err2 == nil && q == 1 && d == 0
	})
	if n1, _ := e.h.Cluster.Client.CoreV1().Nodes().Get(e.ctx, "node-1", metav1.GetOptions{}); out(n1) {
		t.Errorf("node-1 taken after the window closed")
	}
}

// A pod matching --blocking-pod-selector holds back its node only: the
// next node in the queue is rebooted meanwhile; once the pod is gone, the
// node is rebooted at the next look.
func TestBlockingPod(t *testing.T) {
	e := setup(t, 2, 4*time.Minute)
	e.createPod("batch", "backup", "node-0", map[string]string{"app": "backup"})
	c := e.startController("controller", "--blocking-pod-selector=app=backup", "--blocking-pod-selector=team=db,critical=true",
		"--blocked-recheck-interval=2s")
	e.request("node-0")
	e.waitNode("node-0", conditionTrue, "condition True")
	e.request("node-1")
	e.waitEvent("node-0", contract.ReasonRebootBlocked, "blocking pods on the node", "batch/backup")
	e.waitNode("node-1", rebootDone, "node-1 rebooted while node-0 is blocked")
	if n0, _ := e.h.Cluster.Client.CoreV1().Nodes().Get(e.ctx, "node-0", metav1.GetOptions{}); out(n0) {
		t.Fatal("node-0 taken with a blocking pod on it")
	}
	e.eventually("reboot_blocked{BlockingPod} 1", 5*time.Second, e.metricIs(c, blockedMetric("BlockingPod"), 1))
	if err := e.h.Cluster.Client.CoreV1().Pods("batch").Delete(e.ctx, "backup", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitNode("node-0", rebootDone, "node-0 rebooted once the blocking pod is gone")
	e.eventually("reboot_blocked{BlockingPod} 0", 5*time.Second, e.metricIs(c, blockedMetric("BlockingPod"), 0))
}

// prometheus is a Prometheus server of Debian's prometheus package,
// evaluating one always-firing rule every second.
type prometheus struct {
	url string
}

func startPrometheus(t *testing.T, ctx context.Context, logDir string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (Debian: apt-get install prometheus; make test-deps)")
	}
	dir := t.TempDir()
	rules := `groups:
  - name: nodereboot-e2e
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: {severity: critical}
`
	cfg := "global:\n  evaluation_interval: 1s\n  scrape_interval: 1m\nrule_files: [" + filepath.Join(dir, "rules.yml") + "]\n"
	for name, body := range map[string]string{"rules.yml": rules, "prometheus.yml": cfg} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := framework.NewProcess("prometheus", bin, []string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}, logDir)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(10 * time.Second) })
	prom := &prometheus{url: "http://" + addr}
	// Ready when the rule fires.
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if names, _ := prom.firing(); len(names) > 0 {
			return prom
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: no firing alert within a minute (log: %s)", p.LogFile)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}

// firing returns the names of the firing alerts.
func (p *prometheus) firing() ([]string, error) {
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(`ALERTS{alertstate="firing"}`))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	var names []string
	for _, x := range r.Data.Result {
		names = append(names, x.Metric["alertname"])
	}
	return names, nil
}

// A firing alert of a real Prometheus blocks reboots; filtered out with
// --alert-filter-regexp it does not.
func TestFiringAlertBlocks(t *testing.T) {
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Skip("prometheus not installed (Debian: apt-get install prometheus; make test-deps)")
	}
	e := setup(t, 2, 4*time.Minute)
	prom := startPrometheus(t, e.ctx, e.h.Cluster.LogDir)
	a := e.startController("controller-a", "--prometheus-url="+prom.url, "--blocked-recheck-interval=1s",
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms")
	e.request("node-0")
	e.waitEvent("node-0", contract.ReasonRebootBlocked, "active Prometheus alerts: AlwaysFiring")
	e.eventually("reboot_blocked{ActiveAlerts} 1", 5*time.Second, e.metricIs(a, blockedMetric("ActiveAlerts"), 1))
	if n0, _ := e.h.Cluster.Client.CoreV1().Nodes().Get(e.ctx, "node-0", metav1.GetOptions{}); out(n0) {
		t.Fatal("node-0 taken while an alert fires")
	}
	// The same alert, filtered out.
	a.Stop(15 * time.Second)
	e.startController("controller-b", "--prometheus-url="+prom.url, "--alert-filter-regexp=^AlwaysFiring$",
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms")
	e.waitNode("node-0", rebootDone, "node-0 rebooted with the alert filtered out")
}

// webhook is a local HTTP server that records the notifications it gets.
type webhook struct {
	*httptest.Server
	got chan string
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{got: make(chan string, 100)}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.got <- string(b)
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) next(e *env) string {
	e.t.Helper()
	select {
	case m := <-w.got:
		return m
	case <-e.ctx.Done():
		e.t.Fatal("no notification")
		return ""
	}
}

// Labels, the autoscaler's protection and notifications on the real API:
// pre-reboot labels while the node is in the pipeline, post-reboot labels
// after it, the scale-down protection for --scale-down-protection-after
// past the uncordon, and a notification at the drain, the reboot and the
// uncordon through a shoutrrr generic webhook.
func TestLabelsAndScaleDownProtection(t *testing.T) {
	e := setup(t, 1, 3*time.Minute)
	hook := newWebhook(t)
	c := e.startController("controller", "--pre-reboot-node-labels=maintenance=reboot,example.com/draining=true",
		"--post-reboot-node-labels=example.com/rebooted=true", "--scale-down-protection-after=3s",
		"--notify-url=generic+"+hook.URL+"/hook", "--notify-template-reboot=rebooting {{.Node}} ({{.Reason}})")
	e.request("node-0")
	during := e.waitNode("node-0", func(n *corev1.Node) bool { return out(n) && n.Spec.Unschedulable }, "taken")
	if l := during.Labels; l["maintenance"] != "reboot" || l["example.com/draining"] != "true" {
		t.Errorf("labels while in the pipeline: %v", l)
	}
	if a := during.Annotations; a[contract.AnnotationScaleDownDisabled] != "true" || a[contract.AnnotationScaleDownDisabledByUs] != "true" {
		t.Errorf("not protected from scale-down while in the pipeline: %v", a)
	}
	after := e.waitNode("node-0", rebootDone, "rebooted")
	doneAt := time.Now()
	if l := after.Labels; l["example.com/rebooted"] != "true" || l["maintenance"] != "" || l["example.com/draining"] != "" {
		t.Errorf("labels after the reboot: %v", l)
	}
	if _, err := contract.ParseTime(after.Annotations[contract.AnnotationScaleDownDisabledByUs]); err != nil || after.Annotations[contract.AnnotationScaleDownDisabled] != "true" {
		t.Errorf("protection after the uncordon: %v (%v)", after.Annotations, err)
	}
	e.waitNode("node-0", func(n *corev1.Node) bool {
		_, a := n.Annotations[contract.AnnotationScaleDownDisabled]
		_, b := n.Annotations[contract.AnnotationScaleDownDisabledByUs]
		return !a && !b
	}, "protection removed")
	if d := time.Since(doneAt); d < time.Second {
		t.Errorf("protection removed %s after the uncordon, want about 3s", d)
	}
	for _, want := range []string{"Draining node node-0 for a reboot.", "rebooting node-0 (RebootAuthorized)",
		"Node node-0 has rebooted and is back in service."} {
		if got := hook.next(e); got != want {
			t.Errorf("notification %q, want %q", got, want)
		}
	}
	e.eventually("nodereboot_notifications_total{sent} 3", 5*time.Second, e.metricIs(c, `nodereboot_notifications_total{result="sent"}`, 3))
}

// Pause and resume with kubectl on the ConfigMap: paused, the node in
// progress finishes and no new node is taken (RebootBlocked says paused and
// why); resumed, the next node is taken.
func TestPause(t *testing.T) {
	e := setup(t, 2, 4*time.Minute)
	e.pinWorkload("pinned", "node-0", 1)
	c := e.startController("controller")
	e.request("node-0")
	e.waitNode("node-0", out, "node-0 taken")
	kubectl := func(args ...string) {
		t.Helper()
		if out, err := e.h.Cluster.Kubectl(e.ctx, append([]string{"-n", harness.Namespace}, args...)...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	kubectl("create", "configmap", contract.ConfigMapName)
	kubectl("annotate", "configmap", contract.ConfigMapName, contract.AnnotationPaused+"=true", contract.AnnotationPausedReason+"=change freeze")
	e.request("node-1")
	e.waitEvent("node-1", contract.ReasonRebootBlocked, "paused", "change freeze")
	e.eventually("reboot_blocked{Paused} 1", 5*time.Second, e.metricIs(c, blockedMetric("Paused"), 1))
	e.deletePDB("pinned")
	e.waitNode("node-0", rebootDone, "node-0 finishes while paused")
	e.eventually("an admission pass after node-0 finished (Queued 1, none out)", 10*time.Second, func() bool {
		q, err1 := c.metric(`nodereboot_nodes{state="Queued"}`)
		d, err2 := c.metric(`nodereboot_nodes{state="Draining"}`)
		return err1 == nil && err2 == nil && q == 1 && d == 0
	})
	if n1, _ := e.h.Cluster.Client.CoreV1().Nodes().Get(e.ctx, "node-1", metav1.GetOptions{}); out(n1) {
		t.Fatal("node-1 taken while paused")
	}
	resumed := time.Now()
	kubectl("annotate", "configmap", contract.ConfigMapName, contract.AnnotationPaused+"-")
	e.waitNode("node-1", out, "node-1 taken after the resume")
	t.Logf("taken %s after the resume", time.Since(resumed).Round(time.Millisecond))
	e.waitNode("node-1", rebootDone, "node-1 rebooted")
}
