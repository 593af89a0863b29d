package controller_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// auditNodeWrites records every write of a Node with its response code.
const auditNodeWrites = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
    resources: [{group: "", resources: [nodes]}]
    verbs: [patch, update]
  - level: None
`

// TestDeposedLeadersTakeIsFenced: the leader's take of node-0 is held in
// flight by a slow validating webhook while the leader is frozen (SIGSTOP);
// the standby takes over, and node-1's request is now the older one, so
// the new leader puts node-1 out. When the held take reaches the store, the
// API server must refuse it (409): the new leader fenced node-0, which its
// slot record names, before deciding anything. Never two nodes out with
// --max-concurrent=1.
func TestDeposedLeadersTakeIsFenced(t *testing.T) {
	e := setupWith(t, framework.Options{Nodes: 3, AuditPolicy: auditNodeWrites}, 6*time.Minute)
	ctx, c := e.ctx, e.c
	e.startHost("node-0", true)
	e.startHost("node-1", false) // its condition is written by the test
	e.startHost("node-2", true)

	hold := holdFirstTake(t, e, "node-0")
	le := []string{"--max-concurrent=1", "--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"}
	ctrls := []*controller{e.startController("controller-a", le...), e.startController("controller-b", le...)}
	first := e.waitLeaseHolder("")

	if err := e.sims["node-0"].CreateSentinel(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hold.held:
	case <-ctx.Done():
		t.Fatal("the leader's take of node-0 never reached the webhook")
	}
	leader := leaderOf(t, ctrls)
	t.Logf("take of node-0 by %s held in flight; freezing it", first)
	if err := leader.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = leader.Signal(syscall.SIGCONT) }()

	// node-1 asks for a reboot since an hour ago: older than node-0.
	setCondition(t, e, "node-1", time.Now().Add(-time.Hour))
	second := e.waitLeaseHolder(first)
	t.Logf("new leader %s", second)
	e.waitNode("node-1", inState(contract.StateDraining), "node-1 taken by the new leader")

	released := time.Now()
	close(hold.release)
	code := waitAuditCode(t, e, "node-0", hold.heldAt, released)
	if code != http.StatusConflict {
		t.Fatalf("the deposed leader's held take of node-0 ended with %d, want 409 Conflict", code)
	}
	if err := leader.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	e.waitNode("node-1", rebootDone, "node-1 rebooted")
	e.waitNode("node-0", rebootDone, "node-0 rebooted")
	if m := e.out.Max(); m != 1 {
		t.Errorf("%d nodes out at once across the failover, want 1", m)
	}
	for _, name := range []string{"node-0", "node-1"} {
		if r := e.rebootsOf(name); len(r) != 1 {
			t.Errorf("%s rebooted %d times, want 1", name, len(r))
		}
	}
	n0, _ := c.Client.CoreV1().Nodes().Get(ctx, "node-0", metav1.GetOptions{})
	if n0.Annotations[contract.AnnotationTerm] == "" {
		t.Errorf("node-0 carries no %s: never fenced", contract.AnnotationTerm)
	}
}

// heldTake is the webhook's hold of one take.
type heldTake struct {
	held    chan struct{} // closed when the take reached the webhook
	release chan struct{} // closed by the test: answer it
	heldAt  time.Time     // when it reached the webhook
}

// holdFirstTake registers a validating webhook, served by the test, that
// holds the controller's first take of node (a write that sets state
// Draining on it) until release is closed, then admits it.
func holdFirstTake(t *testing.T, e *env, node string) *heldTake {
	t.Helper()
	h := &heldTake{held: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	cert, caPEM := selfSigned(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		req := review.Request
		var obj, old corev1.Node
		_ = json.Unmarshal(req.Object.Raw, &obj)
		_ = json.Unmarshal(req.OldObject.Raw, &old)
		_, wasOut := old.Annotations[contract.AnnotationState]
		if req.Name == node && !wasOut && obj.Annotations[contract.AnnotationState] == string(contract.StateDraining) {
			first := false
			once.Do(func() { first = true; h.heldAt = time.Now(); close(h.held) })
			if first {
				select {
				case <-h.release:
				case <-r.Context().Done():
				}
			}
		}
		review.Response = &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
		review.Request = nil
		_ = json.NewEncoder(w).Encode(review)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	url := "https://" + l.Addr().String() + "/hold"
	user := "system:serviceaccount:" + systemNS + ":" + serviceAccount
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "hold-takes"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "hold-takes.e2e.nodereboot.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"nodes"}}}},
			MatchConditions:         []admissionregistrationv1.MatchCondition{{Name: "controller", Expression: fmt.Sprintf("request.userInfo.username == %q", user)}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](30),
		}},
	}
	if _, err := e.c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(e.ctx, cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return h
}

// selfSigned makes a serving certificate for 127.0.0.1 and its PEM.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hold-takes"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// leaderOf returns the replica whose metrics say it leads.
func leaderOf(t *testing.T, ctrls []*controller) *controller {
	t.Helper()
	for _, c := range ctrls {
		if v, err := c.metric("nodereboot_is_leader"); err == nil && v == 1 {
			return c
		}
	}
	t.Fatal("no replica leads")
	return nil
}

// setCondition writes node's RebootRequired=True as node-problem-detector
// would, with the given transition time.
func setCondition(t *testing.T, e *env, node string, since time.Time) {
	t.Helper()
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":"True","reason":"Test","message":"set by the test","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`,
		contract.DefaultConditionType, time.Now().UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
	if _, err := e.c.Client.CoreV1().Nodes().Patch(e.ctx, node, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
}

// waitAuditCode waits until the API server's audit log has the response to
// the controller's write of node that was received before heldAt and
// completed after released (the held request), and returns its code.
func waitAuditCode(t *testing.T, e *env, node string, heldAt, released time.Time) int {
	t.Helper()
	for {
		if code, ok := auditCode(e.c.AuditLog(), node, heldAt, released); ok {
			return code
		}
		select {
		case <-e.ctx.Done():
			t.Fatalf("no response to the held write of %s in the audit log", node)
		case <-time.After(100 * time.Millisecond):
			// The audit log is a file the API server appends to: it
			// has no watch.
		}
	}
}

func auditCode(path, node string, heldAt, released time.Time) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	user := "system:serviceaccount:" + systemNS + ":" + serviceAccount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Stage string `json:"stage"`
			User  struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef *struct {
				Name string `json:"name"`
			} `json:"objectRef"`
			ResponseStatus *struct {
				Code int `json:"code"`
			} `json:"responseStatus"`
			Received metav1.MicroTime `json:"requestReceivedTimestamp"`
			Done     metav1.MicroTime `json:"stageTimestamp"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Stage != "ResponseComplete" || ev.User.Username != user ||
			ev.ObjectRef == nil || ev.ObjectRef.Name != node || ev.ResponseStatus == nil {
			continue
		}
		if ev.Received.Time.Before(heldAt) && ev.Done.Time.After(released) {
			return ev.ResponseStatus.Code, true
		}
	}
	return 0, false
}
