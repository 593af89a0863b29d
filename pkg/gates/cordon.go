package gates

import (
	"sort"

	v1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// CordonedByOthers returns, sorted, the nodes among nodes that somebody
// else than nodereboot cordoned: unschedulable, and not in nodereboot's
// pipeline (no nodereboot.io/state annotation). Such a node is theirs — an
// AKS upgrade's, a `kubectl drain`'s, an administrator's — and is not taken;
// while there is one, no node is taken (docs/aks.md, "a node cordoned by
// someone else stays theirs"). The caller passes the selected nodes only.
func CordonedByOthers(nodes []*v1.Node) []string {
	var out []string
	for _, n := range nodes {
		if !n.Spec.Unschedulable {
			continue
		}
		if _, ours := n.Annotations[contract.AnnotationState]; ours {
			continue
		}
		out = append(out, n.Name)
	}
	sort.Strings(out)
	return out
}

// PoolsInUpgrade returns, sorted, the node pools whose nodes disagree on
// the version label (e.g. kubernetes.azure.com/node-image-version) or on
// the kubelet version: a pool being upgraded node by node, or one whose
// upgrade stopped half-way. Nodes without the pool label are not in a
// pool; a node without the version label does not count for the label.
// Between two batches of an upgrade no node may be cordoned; this is what
// still shows the upgrade (docs/aks.md).
func PoolsInUpgrade(nodes []*v1.Node, poolLabel, versionLabel string) []string {
	type versions struct{ label, kubelet map[string]bool }
	pools := map[string]*versions{}
	for _, n := range nodes {
		pool, ok := n.Labels[poolLabel]
		if !ok || pool == "" {
			continue
		}
		p := pools[pool]
		if p == nil {
			p = &versions{label: map[string]bool{}, kubelet: map[string]bool{}}
			pools[pool] = p
		}
		if v, ok := n.Labels[versionLabel]; ok && versionLabel != "" {
			p.label[v] = true
		}
		if v := n.Status.NodeInfo.KubeletVersion; v != "" {
			p.kubelet[v] = true
		}
	}
	var out []string
	for name, p := range pools {
		if len(p.label) > 1 || len(p.kubelet) > 1 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
