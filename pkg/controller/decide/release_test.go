package decide

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

func taint(key string) nodeOpt {
	return func(n *v1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: key, Effect: v1.TaintEffectNoSchedule})
	}
}

func dsPod(name string, ready bool, mods ...func(*v1.Pod)) *v1.Pod {
	st := v1.ConditionFalse
	if ready {
		st = v1.ConditionTrue
	}
	yes := true
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "ds", Controller: &yes}}},
		Spec:   v1.PodSpec{NodeName: "n1"},
		Status: v1.PodStatus{Phase: v1.PodRunning, Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: st}}},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func TestDaemonSetPods(t *testing.T) {
	gone := metav1.NewTime(now)
	pods := []*v1.Pod{
		dsPod("b-ready", true),
		dsPod("a-unready", false),
		dsPod("c-terminating", true, func(p *v1.Pod) { p.DeletionTimestamp = &gone }),
		dsPod("d-failed", true, func(p *v1.Pod) { p.Status.Phase = v1.PodFailed }),
		dsPod("e-no-condition", true, func(p *v1.Pod) { p.Status.Conditions = nil }),
		dsPod("f-other-node", false, func(p *v1.Pod) { p.Spec.NodeName = "n2" }),
		dsPod("g-replicaset", false, func(p *v1.Pod) { p.OwnerReferences[0].Kind = "ReplicaSet" }),
		dsPod("h-not-controller", false, func(p *v1.Pod) { p.OwnerReferences[0].Controller = nil }),
		dsPod("i-other-group", false, func(p *v1.Pod) { p.OwnerReferences[0].APIVersion = "example.com/v1" }),
	}
	got := DaemonSetPods("n1", pods)
	want := []PodReadiness{{"kube-system/a-unready", false}, {"kube-system/b-ready", true},
		{"kube-system/c-terminating", false}, {"kube-system/d-failed", false}, {"kube-system/e-no-condition", false}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestRelease(t *testing.T) {
	gate := ReleaseGate{DaemonSetPods: true, Timeout: 10 * time.Minute,
		Conditions: []ConditionWant{{"NetworkUnavailable", v1.ConditionFalse}},
		Taints:     []string{"readiness.k8s.io/*", "example.com/exact"}}
	rebooted := func(since time.Duration, opts ...nodeOpt) *v1.Node {
		base := []nodeOpt{state(contract.StateRebooted, ago(since)), ann(contract.AnnotationRebootAuthorized, "boot-0"),
			cond("NetworkUnavailable", v1.ConditionFalse, ago(time.Hour))}
		return node(append(base, opts...)...)
	}
	ready := []PodReadiness{{"kube-system/cni", true}}
	var many []PodReadiness
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		many = append(many, PodReadiness{"ns/" + n, false})
	}
	for _, tc := range []struct {
		name      string
		node      *v1.Node
		gate      *ReleaseGate // nil: gate
		soak      time.Duration
		pods      []PodReadiness
		podsKnown bool
		kind      Kind
		reason    string
		until     time.Time
		msg       []string // substrings of the message
		notMsg    string
		noReason  bool
	}{
		{name: "healthy: finish", node: rebooted(time.Minute), pods: ready, podsKnown: true, kind: Finish},
		{name: "no DaemonSet pods at all: finish", node: rebooted(time.Minute), podsKnown: true, kind: Finish},
		{name: "pods not listed yet: wait, announcing nothing", node: rebooted(time.Minute), kind: Wait, noReason: true,
			until: now.Add(9 * time.Minute), msg: []string{"listing"}},
		{name: "pods not listed at the timeout: Failed", node: rebooted(10 * time.Minute), kind: Fail,
			reason: contract.ReasonReleaseTimeout, msg: []string{"DaemonSet pods not listed yet"}},
		{name: "unready DaemonSet pod: wait until the timeout", node: rebooted(time.Minute), podsKnown: true,
			pods: []PodReadiness{{"kube-system/cni", false}, {"kube-system/log", true}}, kind: Wait,
			reason: contract.ReasonWaitingForRelease, until: now.Add(9 * time.Minute),
			msg: []string{"DaemonSet pods not Ready: kube-system/cni"}, notMsg: "kube-system/log"},
		{name: "unready DaemonSet pod at the timeout: Failed, naming it", node: rebooted(10 * time.Minute), podsKnown: true,
			pods: []PodReadiness{{"kube-system/cni", false}}, kind: Fail, reason: contract.ReasonReleaseTimeout,
			msg: []string{"kube-system/cni", "--release-timeout 10m0s"}},
		{name: "many unready pods: five named", node: rebooted(time.Minute), podsKnown: true, pods: many, kind: Wait,
			msg: []string{"ns/a, ns/b, ns/c, ns/d, ns/e and 2 more"}, notMsg: "ns/f"},
		{name: "condition with the wrong status", node: rebooted(time.Minute, cond("NetworkUnavailable", v1.ConditionTrue, ago(time.Second))),
			podsKnown: true, kind: Wait, msg: []string{"condition NetworkUnavailable is True (want False)"}},
		{name: "condition absent", node: node(state(contract.StateRebooted, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0")),
			podsKnown: true, kind: Wait, msg: []string{"condition NetworkUnavailable is absent (want False)"}},
		{name: "prefix taint present", node: rebooted(time.Minute, taint("readiness.k8s.io/cni")), podsKnown: true, kind: Wait,
			msg: []string{"taint readiness.k8s.io/cni present"}},
		{name: "exact taint present", node: rebooted(time.Minute, taint("example.com/exact")), podsKnown: true, kind: Wait,
			msg: []string{"taint example.com/exact present"}},
		{name: "other taints do not hold", node: rebooted(time.Minute, taint("example.com/exactly"), taint("readiness.k8s.io")),
			podsKnown: true, kind: Finish},
		{name: "the cordon's taint never holds, even under *", node: rebooted(time.Minute, taint(v1.TaintNodeUnschedulable)),
			gate: &ReleaseGate{Taints: []string{"*"}, Timeout: time.Minute}, kind: Finish},
		{name: "everything at once, at the timeout", node: rebooted(time.Hour, taint("readiness.k8s.io/a"),
			cond("NetworkUnavailable", v1.ConditionUnknown, ago(time.Second))), pods: []PodReadiness{{"x/y", false}}, podsKnown: true,
			kind: Fail, reason: contract.ReasonReleaseTimeout, msg: []string{"NetworkUnavailable is Unknown", "readiness.k8s.io/a", "x/y"}},
		{name: "healthy but soaking: the soak", node: rebooted(time.Minute), soak: 5 * time.Minute, podsKnown: true,
			kind: Wait, until: now.Add(4 * time.Minute)},
		{name: "unhealthy past the soak: the gate", node: rebooted(time.Minute), soak: 30 * time.Second, podsKnown: true,
			pods: []PodReadiness{{"a/b", false}}, kind: Wait, reason: contract.ReasonWaitingForRelease, until: now.Add(9 * time.Minute)},
		{name: "timeout 0: no gate", node: rebooted(time.Hour, taint("readiness.k8s.io/a")),
			gate: &ReleaseGate{DaemonSetPods: true, Taints: []string{"readiness.k8s.io/*"}}, kind: Finish},
		{name: "DaemonSet pods not checked: no watch needed", node: rebooted(time.Minute),
			gate: &ReleaseGate{Timeout: time.Minute}, kind: Finish},
		{name: "NotReady: the reboot timeout, not the gate", node: rebooted(time.Minute, notReady(ago(time.Second))),
			podsKnown: true, pods: []PodReadiness{{"a/b", false}}, kind: Wait, until: now.Add(29 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg0
			c.Release = gate
			if tc.gate != nil {
				c.Release = *tc.gate
			}
			c.PostRebootSoak = tc.soak
			got := Node(held(Input{Node: tc.node, Config: &c, Now: now, Pods: tc.pods, PodsKnown: tc.podsKnown}))
			if got.Kind != tc.kind {
				t.Fatalf("kind = %s, want %s (%v)", got.Kind, tc.kind, got)
			}
			if tc.noReason && got.Reason != "" {
				t.Errorf("reason %q: a transient announced", got.Reason)
			}
			if tc.reason != "" && got.Reason != tc.reason {
				t.Errorf("reason = %q, want %q", got.Reason, tc.reason)
			}
			if tc.kind == Wait && !tc.until.IsZero() && !got.Until.Equal(tc.until) {
				t.Errorf("until = %v, want %v", got.Until, tc.until)
			}
			for _, m := range tc.msg {
				if !strings.Contains(got.Message, m) {
					t.Errorf("message %q does not contain %q", got.Message, m)
				}
			}
			if tc.notMsg != "" && strings.Contains(got.Message, tc.notMsg) {
				t.Errorf("message %q contains %q", got.Message, tc.notMsg)
			}
			if tc.kind == Fail && (got.Patch == nil || *got.Patch.Annotations[contract.AnnotationState] != string(contract.StateFailed) ||
				*got.Patch.Annotations[contract.AnnotationStateReason] != contract.ReasonReleaseTimeout || got.Patch.Unschedulable != nil) {
				t.Errorf("fail patch %s: want state Failed, reason %s, cordon kept", dump(got.Patch), contract.ReasonReleaseTimeout)
			}
			if tc.kind == Fail && !KeepsSlot(Input{Node: applied(tc.node, got.Patch), Config: &c, Now: now}) {
				t.Error("the failed node gives its slot back")
			}
		})
	}
}

// applied returns a copy of n with the patch's annotations applied.
func applied(n *v1.Node, p *Patch) *v1.Node {
	n = n.DeepCopy()
	for k, v := range p.Annotations {
		if v == nil {
			delete(n.Annotations, k)
		} else {
			n.Annotations[k] = *v
		}
	}
	return n
}

func TestParseConditionWants(t *testing.T) {
	got, err := ParseConditionWants([]string{"NetworkUnavailable=False", " Ready=True", "x.example.com/Y=Unknown"})
	if err != nil || len(got) != 3 || got[0].String() != "NetworkUnavailable=False" || got[1].String() != "Ready=True" {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"NetworkUnavailable", "=False", "A=false", "A=Yes", "A B=True", "A=True=False"} {
		if _, err := ParseConditionWants([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseConditionWants([]string{"A=True", "A=False"}); err == nil {
		t.Error("a condition given twice accepted")
	}
}

func TestValidateTaintPatterns(t *testing.T) {
	if err := ValidateTaintPatterns([]string{"readiness.k8s.io/*", "example.com/key", "*", "node.cloudprovider.kubernetes.io/uninitialized"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "a*b/*", "**", "key=value", "key:NoSchedule", v1.TaintNodeUnschedulable} {
		if err := ValidateTaintPatterns([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
