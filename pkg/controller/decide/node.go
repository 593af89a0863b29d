package decide

// What the decisions read of a Node.

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// IsReady reports whether the node's Ready condition is True.
func IsReady(n *v1.Node) bool {
	c := condition(n, v1.NodeReady)
	return c != nil && c.Status == v1.ConditionTrue
}

func condition(n *v1.Node, t v1.NodeConditionType) *v1.NodeCondition {
	return contract.Condition(n, string(t))
}

// Selected reports whether the node is one the controller may reboot: it
// matches the selector and is not labelled disabled.
func Selected(n *v1.Node, cfg *Config) bool {
	if contract.Disabled(n) {
		return false
	}
	return cfg.Selector == nil || cfg.Selector.Matches(labels.Set(n.Labels))
}

// StateOf returns the node's state annotation as is (possibly invalid) and
// whether it is present. A node with the annotation counts as out.
func StateOf(n *v1.Node) (string, bool) {
	s, ok := n.Annotations[contract.AnnotationState]
	return s, ok
}

// Out reports whether the node counts against --max-concurrent by what it
// carries (see Marked); the controller also counts the nodes of its slot
// record.
func Out(n *v1.Node) bool { return Marked(n) }

// lastReboot returns the node's last-reboot time, if it has a valid one.
func lastReboot(n *v1.Node) (time.Time, bool) {
	s, ok := n.Annotations[contract.AnnotationLastReboot]
	if !ok {
		return time.Time{}, false
	}
	t, err := contract.ParseTime(s)
	return t, err == nil
}
