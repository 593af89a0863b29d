package drain

// Why a disruption budget refused an eviction, in words that name the fix.

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// unhealthyPodHint explains the refusal of a running, not Ready pod's
// eviction by budgets whose unhealthyPodEvictionPolicy is not AlwaysAllow
// (unset is IfHealthyBudget): such a budget lets an unready pod go only
// while the budget is healthy, so an application that is already degraded
// keeps the very pods that are not serving. "" when the pod is Ready, not
// running (the API server evicts pending pods regardless) or no budget is
// to blame.
func unhealthyPodHint(p *v1.Pod, pdbs []*policyv1.PodDisruptionBudget) string {
	if p.Status.Phase != v1.PodRunning || contract.PodReady(p) {
		return ""
	}
	var strict []string
	for _, b := range pdbs {
		policy := policyv1.IfHealthyBudget
		if b.Spec.UnhealthyPodEvictionPolicy != nil {
			policy = *b.Spec.UnhealthyPodEvictionPolicy
		}
		if policy != policyv1.AlwaysAllow {
			strict = append(strict, fmt.Sprintf("%s/%s (unhealthyPodEvictionPolicy %s)", b.Namespace, b.Name, policy))
		}
	}
	if len(strict) == 0 {
		return ""
	}
	sort.Strings(strict)
	return "the pod is not Ready, and PodDisruptionBudget " + strings.Join(strict, ", ") +
		" lets an unready pod be evicted only while the budget is healthy; to let unready pods go, set unhealthyPodEvictionPolicy: AlwaysAllow on it"
}
