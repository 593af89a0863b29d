package gates

import (
	"context"
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

// PodBlocker finds the pods that block a node's reboot: pods on the node
// that match one of its label selectors (--blocking-pod-selector) and have
// not terminated.
type PodBlocker struct {
	selectors []labels.Selector
}

// NewPodBlocker parses the selectors (label selector syntax, as kubectl
// get -l takes them). It returns nil, nil when there are none.
func NewPodBlocker(selectors []string) (*PodBlocker, error) {
	if len(selectors) == 0 {
		return nil, nil
	}
	b := &PodBlocker{}
	for _, s := range selectors {
		sel, err := labels.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("invalid selector %q: %v", s, err)
		}
		if sel.Empty() {
			return nil, fmt.Errorf("empty selector %q would match every pod", s)
		}
		b.selectors = append(b.selectors, sel)
	}
	return b, nil
}

// String lists the selectors.
func (b *PodBlocker) String() string {
	var s []string
	for _, sel := range b.selectors {
		s = append(s, sel.String())
	}
	return strings.Join(s, " | ")
}

// Match returns the blocking pods of the node among pods, as sorted
// "namespace/name" strings.
func (b *PodBlocker) Match(node string, pods []*v1.Pod) []string {
	var out []string
	for _, p := range pods {
		if p.Spec.NodeName != node || contract.PodTerminal(p) {
			continue
		}
		for _, sel := range b.selectors {
			if sel.Matches(labels.Set(p.Labels)) {
				out = append(out, p.Namespace+"/"+p.Name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// List looks up the node's blocking pods: one list request per selector,
// restricted to the node by a field selector on spec.nodeName (and to pods
// that have not terminated), so that the API server does the filtering and
// no pod is cached.
func (b *PodBlocker) List(ctx context.Context, client kubernetes.Interface, node string) ([]string, error) {
	fs := fields.AndSelectors(
		fields.OneTermEqualSelector("spec.nodeName", node),
		fields.OneTermNotEqualSelector("status.phase", string(v1.PodSucceeded)),
		fields.OneTermNotEqualSelector("status.phase", string(v1.PodFailed)),
	).String()
	seen := map[string]bool{}
	var out []string
	for _, sel := range b.selectors {
		// A consistent read (the API server serves it from its watch
		// cache once that is up to date): a pod just created is seen.
		list, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
			FieldSelector: fs, LabelSelector: sel.String()})
		if err != nil {
			return nil, fmt.Errorf("list the pods of node %s matching %q: %w", node, sel, err)
		}
		for i := range list.Items {
			p := &list.Items[i]
			if name := p.Namespace + "/" + p.Name; p.Spec.NodeName == node && !contract.PodTerminal(p) && !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// PodsMessage explains a block by blocking pods: the first five, cleaned
// and capped at sanitize.MaxMessage bytes.
func PodsMessage(pods []string) string {
	const prefix = "blocking pods on the node (--blocking-pod-selector): "
	return prefix + sanitize.List(pods, 5, sanitize.MaxMessage-len(prefix))
}
