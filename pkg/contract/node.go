package contract

import (
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The model of a Node every binary reads the same way: its conditions, the
// reference its events carry, the order of its versions.

// Condition returns the node's condition of type t, or nil (also for a nil
// node).
func Condition(n *v1.Node, t string) *v1.NodeCondition {
	if n == nil {
		return nil
	}
	for i := range n.Status.Conditions {
		if string(n.Status.Conditions[i].Type) == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// NodeRef is the involvedObject of the events about a node, as the kubelet
// writes it: `kubectl describe node` finds events by UID = node name. Events
// of a cluster-scoped object land in namespace default.
func NodeRef(name string) *v1.ObjectReference {
	return &v1.ObjectReference{Kind: "Node", Name: name, UID: types.UID(name)}
}

// ResourceVersionOrder returns a resourceVersion as a number, to order two
// versions of one object. Resource versions are opaque to clients, but the
// API server's are etcd revisions; ok is false when one does not parse, and
// then nothing may be concluded from it.
func ResourceVersionOrder(rv string) (n uint64, ok bool) {
	n, err := strconv.ParseUint(rv, 10, 64)
	return n, err == nil
}

// Disabled reports whether the node opted out of reboots (LabelDisabled
// "true"): the controller never selects it, the plugin shows it disabled.
func Disabled(n *v1.Node) bool { return n.Labels[LabelDisabled] == "true" }

// PodTerminal reports whether a pod has ended (Succeeded or Failed): it
// neither has to leave a node before a reboot nor blocks one.
func PodTerminal(p *v1.Pod) bool {
	return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
}

// PodReady reports whether the pod's Ready condition is True.
func PodReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// DaemonSetPod reports whether the pod's controller is an apps/* DaemonSet:
// the drain leaves it on the node, the release gate waits for it to be
// Ready again.
func DaemonSetPod(p *v1.Pod) bool {
	ref := metav1.GetControllerOf(p)
	return ref != nil && ref.Kind == "DaemonSet" && strings.HasPrefix(ref.APIVersion, "apps/")
}
