package plugin

import (
	"context"
	"strconv"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// ReasonEvictionByEvictionAPI is the reason of the DisruptionTarget
// condition the API server sets on a pod when it accepts its eviction.
const ReasonEvictionByEvictionAPI = "EvictionByEvictionAPI"

// Evicted reports whether the API server accepted the pod's eviction: it
// carries DisruptionTarget=True with reason EvictionByEvictionAPI (until it
// is gone).
func Evicted(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.DisruptionTarget {
			return c.Status == v1.ConditionTrue && c.Reason == ReasonEvictionByEvictionAPI
		}
	}
	return false
}

// evictedOn returns, per node in the pipeline (with a state annotation), the
// number of its pods whose eviction was accepted and that have not left yet
// ("?" when the user may not list pods); "-" for the other nodes. One list
// of pods per node in the pipeline, by spec.nodeName.
func evictedOn(ctx context.Context, client kubernetes.Interface, nodes []v1.Node) (map[string]string, error) {
	out := map[string]string{}
	for i := range nodes {
		n := &nodes[i]
		out[n.Name] = "-"
		if _, ok := n.Annotations[contract.AnnotationState]; !ok {
			continue
		}
		pods, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("spec.nodeName", n.Name).String()})
		switch {
		case apierrors.IsForbidden(err):
			out[n.Name] = "?"
			continue
		case err != nil:
			return nil, err
		}
		count := 0
		for j := range pods.Items {
			if p := &pods.Items[j]; p.Spec.NodeName == n.Name && Evicted(p) {
				count++
			}
		}
		out[n.Name] = strconv.Itoa(count)
	}
	return out, nil
}
