package drain

import (
	"context"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

func ready(s v1.ConditionStatus) podOpt {
	return func(p *v1.Pod) { p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: s}} }
}

func budget(name string, policy *policyv1.UnhealthyPodEvictionPolicyType) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			UnhealthyPodEvictionPolicy: policy}}
}

func TestUnhealthyPodHint(t *testing.T) {
	always, ifHealthy := policyv1.AlwaysAllow, policyv1.IfHealthyBudget
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		pdbs []*policyv1.PodDisruptionBudget
		want []string // substrings; nil: no hint
	}{
		{"unready, policy unset (IfHealthyBudget)", pod("w", ready(v1.ConditionFalse)), []*policyv1.PodDisruptionBudget{budget("web", nil)},
			[]string{"not Ready", "default/web (unhealthyPodEvictionPolicy IfHealthyBudget)", "unhealthyPodEvictionPolicy: AlwaysAllow"}},
		{"unready, IfHealthyBudget", pod("w", ready(v1.ConditionFalse)), []*policyv1.PodDisruptionBudget{budget("web", &ifHealthy)},
			[]string{"default/web (unhealthyPodEvictionPolicy IfHealthyBudget)"}},
		{"no Ready condition counts as unready", pod("w"), []*policyv1.PodDisruptionBudget{budget("web", nil)}, []string{"not Ready"}},
		{"unready, AlwaysAllow: not the budget's policy", pod("w", ready(v1.ConditionFalse)), []*policyv1.PodDisruptionBudget{budget("web", &always)}, nil},
		{"two budgets, only the strict one named", pod("w", ready(v1.ConditionFalse)),
			[]*policyv1.PodDisruptionBudget{budget("a", &always), budget("b", nil)}, []string{"default/b (", "not Ready"}},
		{"Ready: no hint", pod("w", ready(v1.ConditionTrue)), []*policyv1.PodDisruptionBudget{budget("web", nil)}, nil},
		{"Pending: evicted regardless, no hint", pod("w", phase(v1.PodPending)), []*policyv1.PodDisruptionBudget{budget("web", nil)}, nil},
		{"no budget: no hint", pod("w", ready(v1.ConditionFalse)), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := unhealthyPodHint(tc.pod, tc.pdbs)
			if tc.want == nil && got != "" {
				t.Fatalf("hint %q, want none", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("hint %q lacks %q", got, w)
				}
			}
			if strings.Contains(got, "default/a (") {
				t.Errorf("hint %q names the AlwaysAllow budget", got)
			}
		})
	}
}

// The EvictionBlocked event of an unready pod names the policy and the fix;
// once the pod is Ready, a refusal says so in a new event (without the hint).
func TestEvictionBlockedExplainsUnhealthyPodPolicy(t *testing.T) {
	d, _, _, rec, clk := setup(t, Options{GracePeriodSeconds: -1}, tooManyRequests, budget("web", nil))
	ctx := context.Background()
	st := d.Pass(ctx, nodeName, []*v1.Pod{pod("web-1", ready(v1.ConditionFalse))})
	evs := events(rec)
	if len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning "+contract.ReasonEvictionBlocked) ||
		!strings.Contains(evs[0], "default/web-1") || !strings.Contains(evs[0], "unhealthyPodEvictionPolicy: AlwaysAllow") {
		t.Fatalf("events %q: want an EvictionBlocked naming the pod and the fix", evs)
	}
	if len(st.Pods) != 1 || !strings.Contains(st.Pods[0], "not Ready") {
		t.Errorf("blocked %v: want the pod not Ready", st.Pods)
	}
	clk.Step(st.RetryAt.Sub(clk.Now()))
	d.Pass(ctx, nodeName, []*v1.Pod{pod("web-1", ready(v1.ConditionTrue))})
	evs = events(rec)
	if len(evs) != 1 || strings.Contains(evs[0], "AlwaysAllow") {
		t.Fatalf("events %q: want one EvictionBlocked without the hint", evs)
	}
}
