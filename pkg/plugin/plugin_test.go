package plugin

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

var now = time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)

func node(name string, mut func(*v1.Node)) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}, Labels: map[string]string{}}}
	if mut != nil {
		mut(n)
	}
	return n
}

func required(since time.Time) func(*v1.Node) {
	return func(n *v1.Node) {
		n.Status.Conditions = append(n.Status.Conditions, v1.NodeCondition{Type: contract.DefaultConditionType,
			Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(since)})
	}
}

func event(node, reason, typ, source, msg string, at time.Time) *v1.Event {
	return &v1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "default", Name: node + "." + reason + at.Format("150405")},
		InvolvedObject: v1.ObjectReference{Kind: "Node", Name: node, UID: "x"},
		Reason:         reason, Type: typ, Message: msg, Source: v1.EventSource{Component: source},
		FirstTimestamp: metav1.NewTime(at), LastTimestamp: metav1.NewTime(at), Count: 1,
	}
}

// run runs the plugin against a fake API.
func run(t *testing.T, client kubernetes.Interface, args ...string) (int, string, string) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	code := Run(context.Background(), args, streams, func(*genericclioptions.ConfigFlags) (kubernetes.Interface, error) { return client, nil })
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	client := fake.NewClientset()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "Usage"},
		{[]string{"reboot-everything"}, 2, "unknown command"},
		{[]string{"request"}, 2, "want 1 argument"},
		{[]string{"status", "extra"}, 2, "want 0 argument"},
		{[]string{"--no-such-flag", "status"}, 2, "unknown flag"},
		{[]string{"--help"}, 0, "Usage"},
	} {
		code, _, errOut := run(t, client, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
	if code, out, _ := run(t, client, "--version"); code != 0 || !strings.HasPrefix(out, Name) {
		t.Errorf("--version: %d %q", code, out)
	}
}

func TestStatus(t *testing.T) {
	objs := []runtime.Object{
		node("node-a", required(now.Add(-2*time.Hour))),
		node("node-b", func(n *v1.Node) {
			required(now.Add(-time.Hour))(n)
			n.Annotations[contract.AnnotationState] = "Draining"
			n.Annotations[contract.AnnotationStateSince] = contract.FormatTime(now.Add(-5 * time.Minute))
		}),
		node("node-c", func(n *v1.Node) {
			n.Annotations[contract.AnnotationRebootRequested] = "yes"
			n.Annotations[contract.AnnotationLastReboot] = contract.FormatTime(now.Add(-48 * time.Hour))
		}),
		node("node-d", func(n *v1.Node) {
			n.Annotations[contract.AnnotationState] = "Failed"
			n.Annotations[contract.AnnotationStateReason] = "RebootTimeout"
			n.Annotations[contract.AnnotationStateSince] = contract.FormatTime(now.Add(-time.Minute))
		}),
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "nodereboot-system", Name: contract.ConfigMapName,
			Annotations: map[string]string{contract.AnnotationPaused: "true", contract.AnnotationPausedReason: "change freeze"}}},
		event("node-a", contract.ReasonRebootBlocked, "Warning", contract.ControllerComponent, "old block", now.Add(-time.Hour)),
		event("node-a", contract.ReasonRebootBlocked, "Warning", contract.ControllerComponent, "paused (…): change freeze", now.Add(-time.Minute)),
		// node-b's pods: two evicted (one of them terminating), one
		// disrupted otherwise, one running, one evicted on another node.
		pod("evicted-1", "node-b", v1.DisruptionTarget, v1.ConditionTrue, "EvictionByEvictionAPI"),
		pod("evicted-2", "node-b", v1.DisruptionTarget, v1.ConditionTrue, "EvictionByEvictionAPI"),
		pod("preempted", "node-b", v1.DisruptionTarget, v1.ConditionTrue, "PreemptionByScheduler"),
		pod("not-yet", "node-b", v1.DisruptionTarget, v1.ConditionFalse, "EvictionByEvictionAPI"),
		pod("running", "node-b", v1.PodReady, v1.ConditionTrue, ""),
		pod("elsewhere", "node-a", v1.DisruptionTarget, v1.ConditionTrue, "EvictionByEvictionAPI"),
		// Before node-b's state change: no longer relevant.
		event("node-b", contract.ReasonRebootBlocked, "Warning", contract.ControllerComponent, "outside the window", now.Add(-10*time.Minute)),
	}
	var out bytes.Buffer
	if err := Status(context.Background(), fake.NewClientset(objs...), Options{Namespace: "nodereboot-system", ConditionType: contract.DefaultConditionType,
		Now: func() time.Time { return now }}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	// The lines with their columns' spacing squeezed.
	var lines []string
	for _, l := range strings.Split(got, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	squeezed := strings.Join(lines, "\n")
	for _, want := range []string{
		"Paused: yes (change freeze); no node is taken until `kubectl nodereboot resume`",
		"Last RebootBlocked: 60s ago on node-a: paused (…): change freeze",
		"NODE REBOOTREQUIRED SINCE STATE SINCE EVICTED LAST REBOOT BLOCKED",
		"node-a True 120m - - - - paused (…): change freeze",
		"node-b True 60m Draining 5m 2 - -",
		"node-c - (requested) - - - - 2d ago -",
		"node-d - - Failed (RebootTimeout) 60s 0 - -",
	} {
		if !strings.Contains(squeezed, want) {
			t.Errorf("status lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "old block") || strings.Contains(got, "outside the window") {
		t.Errorf("status shows an outdated block:\n%s", got)
	}
}

func pod(name, node string, typ v1.PodConditionType, status v1.ConditionStatus, reason string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "work", Name: name}, Spec: v1.PodSpec{NodeName: node},
		Status: v1.PodStatus{Conditions: []v1.PodCondition{{Type: typ, Status: status, Reason: reason}}}}
}

// Without the right to list pods, status still works and says it does not
// know.
func TestStatusWithoutPods(t *testing.T) {
	client := fake.NewClientset(node("node-b", func(n *v1.Node) { n.Annotations[contract.AnnotationState] = "Draining" }))
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(v1.Resource("pods"), "", errors.New("no"))
	})
	var out bytes.Buffer
	if err := Status(context.Background(), client, Options{Namespace: "nodereboot-system", ConditionType: contract.DefaultConditionType,
		Now: func() time.Time { return now }}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), "node-b - - Draining - ? -") {
		t.Errorf("status:\n%s", out.String())
	}
}

func TestRequestPauseResume(t *testing.T) {
	client := fake.NewClientset(node("node-a", nil))
	if code, out, errOut := run(t, client, "request", "node-a"); code != 0 || !strings.Contains(out, "reboot requested") {
		t.Fatalf("request: %d %q %q", code, out, errOut)
	}
	n, _ := client.CoreV1().Nodes().Get(context.Background(), "node-a", metav1.GetOptions{})
	if !strings.HasPrefix(n.Annotations[contract.AnnotationRebootRequested], "kubectl-nodereboot ") {
		t.Errorf("annotation %q", n.Annotations[contract.AnnotationRebootRequested])
	}
	if code, _, errOut := run(t, client, "request", "node-zz"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("request of a missing node: %d %q", code, errOut)
	}

	cm := func() *v1.ConfigMap {
		c, err := client.CoreV1().ConfigMaps("ops").Get(context.Background(), contract.ConfigMapName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Resume without a ConfigMap: nothing to do.
	if code, _, errOut := run(t, client, "resume", "--controller-namespace=ops"); code != 0 {
		t.Fatalf("resume: %d %q", code, errOut)
	}
	// Pause creates it.
	if code, out, errOut := run(t, client, "pause", "--controller-namespace=ops", "--reason=incident 42"); code != 0 || !strings.Contains(out, "paused") {
		t.Fatalf("pause: %d %q %q", code, out, errOut)
	}
	if a := cm().Annotations; a[contract.AnnotationPaused] != "true" || a[contract.AnnotationPausedReason] != "incident 42" {
		t.Errorf("after pause: %v", a)
	}
	// Resume removes the annotations; pause again patches.
	if code, _, errOut := run(t, client, "resume", "--controller-namespace=ops"); code != 0 {
		t.Fatalf("resume: %d %q", code, errOut)
	}
	if a := cm().Annotations; a[contract.AnnotationPaused] != "" || a[contract.AnnotationPausedReason] != "" {
		t.Errorf("after resume: %v", a)
	}
	if code, _, errOut := run(t, client, "pause", "--controller-namespace=ops"); code != 0 {
		t.Fatalf("pause: %d %q", code, errOut)
	}
	if a := cm().Annotations; a[contract.AnnotationPaused] != "true" {
		t.Errorf("after the second pause: %v", a)
	}
}

func TestHistory(t *testing.T) {
	client := fake.NewClientset(
		node("node-a", func(n *v1.Node) { n.Annotations[contract.AnnotationLastReboot] = "2026-11-25T17:00:00Z" }),
		event("node-a", contract.ReasonRebootDone, "Normal", contract.ControllerComponent, "reboot completed", now.Add(-time.Minute)),
		event("node-a", contract.ReasonRebootRequired, "Normal", contract.DetectorComponent, "sentinel present", now.Add(-time.Hour)),
		event("node-a", "NodeReady", "Normal", "kubelet", "ready", now.Add(-30*time.Minute)),
		event("node-a", contract.ReasonCordoned, "Normal", contract.ControllerComponent, "cordoned", now.Add(-50*time.Minute)),
		event("node-b", contract.ReasonCordoned, "Normal", contract.ControllerComponent, "not mine", now),
	)
	code, out, errOut := run(t, client, "history", "node-a")
	if code != 0 {
		t.Fatalf("history: %d %q", code, errOut)
	}
	i1, i2, i3 := strings.Index(out, "RebootRequired"), strings.Index(out, "Cordoned"), strings.Index(out, "RebootCompleted")
	if !strings.Contains(out, "Last reboot: 2026-11-25T17:00:00Z") || i1 < 0 || i2 < i1 || i3 < i2 {
		t.Errorf("history not in order:\n%s", out)
	}
	if strings.Contains(out, "NodeReady") || strings.Contains(out, "not mine") {
		t.Errorf("history shows others' events:\n%s", out)
	}
	if code, out, _ := run(t, fake.NewClientset(node("node-x", nil)), "history", "node-x"); code != 0 || !strings.Contains(out, "no nodereboot events") {
		t.Errorf("empty history: %d %q", code, out)
	}
}

// Whatever anybody wrote in an annotation, a condition or an event, the
// plugin prints no control character: an ESC sequence is shown escaped.
func TestOutputEscaped(t *testing.T) {
	const evil = "\x1b]0;owned\a\x1b[2J\u009b31m\u202e\xff\nFAKE LINE"
	client := fake.NewClientset(
		node("node-a", func(n *v1.Node) {
			n.Status.Conditions = append(n.Status.Conditions, v1.NodeCondition{Type: contract.DefaultConditionType,
				Status: v1.ConditionStatus("True" + evil), LastTransitionTime: metav1.NewTime(now)})
			n.Annotations[contract.AnnotationState] = "Failed" + evil
			n.Annotations[contract.AnnotationStateReason] = "why" + evil
			n.Annotations[contract.AnnotationStateSince] = "since" + evil
			n.Annotations[contract.AnnotationLastReboot] = "last" + evil
		}),
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "nodereboot-system", Name: contract.ConfigMapName,
			Annotations: map[string]string{contract.AnnotationPaused: "true", contract.AnnotationPausedReason: "freeze" + evil}}},
		event("node-a", contract.ReasonRebootBlocked, "Warning"+evil, contract.ControllerComponent, "blocked"+evil, now.Add(-time.Minute)),
	)
	for _, args := range [][]string{{"status"}, {"history", "node-a"}} {
		code, out, errOut := run(t, client, args...)
		if code != 0 {
			t.Fatalf("%v: %d %q", args, code, errOut)
		}
		if i := strings.IndexFunc(out, func(r rune) bool { return r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) }); i >= 0 ||
			!utf8.ValidString(out) {
			t.Errorf("%v prints a control character or invalid UTF-8:\n%q", args, out)
		}
		if strings.Contains(out, "\nFAKE LINE") {
			t.Errorf("%v: a value started a line of its own:\n%s", args, out)
		}
		if !strings.Contains(out, `\x1b]0;owned\x07\x1b[2J\u009b31m\u202e\xff FAKE LINE`) {
			t.Errorf("%v does not show the escaped value:\n%s", args, out)
		}
	}
}

// Events are read from the events namespace (default) only: an event in
// another namespace claiming to be nodereboot's about a Node is not shown.
func TestEventsFromTheEventsNamespaceOnly(t *testing.T) {
	forged := event("node-a", contract.ReasonRebootDone, "Normal", contract.ControllerComponent, "forged elsewhere", now)
	forged.Namespace = "tenant"
	client := fake.NewClientset(node("node-a", nil), forged,
		event("node-a", contract.ReasonCordoned, "Normal", contract.ControllerComponent, "cordoned", now.Add(-time.Minute)))
	code, out, errOut := run(t, client, "history", "node-a")
	if code != 0 || strings.Contains(out, "forged elsewhere") || !strings.Contains(out, "cordoned") {
		t.Fatalf("history: %d %q %q", code, out, errOut)
	}
	var listed []string
	for _, a := range client.Actions() {
		if a.GetVerb() == "list" && a.GetResource().Resource == "events" {
			listed = append(listed, a.GetNamespace())
		}
	}
	if len(listed) != 1 || listed[0] != metav1.NamespaceDefault {
		t.Fatalf("events listed in namespaces %q, want only default", listed)
	}
}
