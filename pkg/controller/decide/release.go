package decide

// The release gate: what a rebooted node must show before its slot goes to
// the next node (docs/gates.md#release-gate).

import (
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// maxNamed caps the pods named in a release message.
const maxNamed = 5

// ConditionWant is a node condition that must have a status before a node is
// released (--release-conditions).
type ConditionWant struct {
	Type   string
	Status v1.ConditionStatus
}

func (c ConditionWant) String() string { return c.Type + "=" + string(c.Status) }

// ReleaseGate configures the release gate.
type ReleaseGate struct {
	// DaemonSetPods: every DaemonSet pod bound to the node must be Ready.
	DaemonSetPods bool
	// Conditions must have their status; an absent condition has none.
	Conditions []ConditionWant
	// Taints are taint keys that must be absent; a pattern ending in "*"
	// matches every key that starts with what comes before it. The cordon's
	// own taint (node.kubernetes.io/unschedulable) never matches: the node
	// is cordoned until its release.
	Taints []string
	// Timeout bounds the wait for the gate, counted from the Rebooted
	// state-since (the new boot seen Ready); zero disables the gate.
	Timeout time.Duration
}

// enabled reports whether the gate checks anything.
func (r *ReleaseGate) enabled() bool {
	return r.Timeout > 0 && (r.DaemonSetPods || len(r.Conditions) > 0 || len(r.Taints) > 0)
}

// PodReadiness is what the release gate reads of one DaemonSet pod bound to
// the node.
type PodReadiness struct {
	// Name is namespace/name.
	Name string
	// Ready: the pod's Ready condition is True, it is not terminating and
	// not terminal.
	Ready bool
}

// DaemonSetPods summarises the DaemonSet pods among pods bound to node
// (pods is a watch's view of spec.nodeName=node), sorted by name.
func DaemonSetPods(node string, pods []*v1.Pod) []PodReadiness {
	var out []PodReadiness
	for _, p := range pods {
		if p.Spec.NodeName != node || !contract.DaemonSetPod(p) {
			continue
		}
		out = append(out, PodReadiness{Name: p.Namespace + "/" + p.Name, Ready: podReady(p)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func podReady(p *v1.Pod) bool {
	return p.DeletionTimestamp == nil && !contract.PodTerminal(p) && contract.PodReady(p)
}

// releaseProblems lists what keeps a rebooted, Ready node from its release;
// empty: nothing. podsKnown false: the node's pods are not listed yet.
func releaseProblems(n *v1.Node, r *ReleaseGate, pods []PodReadiness, podsKnown bool) []string {
	var out []string
	for _, w := range r.Conditions {
		got := v1.ConditionStatus("absent")
		if c := condition(n, v1.NodeConditionType(w.Type)); c != nil {
			got = c.Status
		}
		if got != w.Status {
			out = append(out, fmt.Sprintf("condition %s is %s (want %s)", w.Type, got, w.Status))
		}
	}
	var taints []string
	for _, t := range n.Spec.Taints {
		if matchesTaint(r.Taints, t.Key) {
			taints = append(taints, t.Key)
		}
	}
	if len(taints) > 0 {
		sort.Strings(taints)
		out = append(out, "taint "+strings.Join(taints, ", ")+" present")
	}
	if r.DaemonSetPods {
		if !podsKnown {
			out = append(out, "DaemonSet pods not listed yet")
		} else if names, more := unready(pods); len(names) > 0 {
			s := "DaemonSet pods not Ready: " + strings.Join(names, ", ")
			if more > 0 {
				s += fmt.Sprintf(" and %d more", more)
			}
			out = append(out, s)
		}
	}
	return out
}

// unready names up to maxNamed pods that are not Ready, and counts the rest.
func unready(pods []PodReadiness) (names []string, more int) {
	for _, p := range pods {
		if p.Ready {
			continue
		}
		if len(names) == maxNamed {
			more++
			continue
		}
		names = append(names, p.Name)
	}
	return names, more
}

// matchesTaint reports whether key matches one of the patterns.
func matchesTaint(patterns []string, key string) bool {
	if key == v1.TaintNodeUnschedulable {
		return false
	}
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(key, prefix) || p == key {
			return true
		}
	}
	return false
}

// release decides for a rebooted, Ready node whose release gate is enabled:
// a Wait naming what it waits for, or a Fail once Timeout has passed since
// since; ok is false when the gate is passed.
func release(in Input, since time.Time) (Action, bool) {
	r := &in.Config.Release
	if !r.enabled() {
		return Action{}, false
	}
	problems := releaseProblems(in.Node, r, in.Pods, in.PodsKnown)
	if len(problems) == 0 {
		return Action{}, false
	}
	what := strings.Join(problems, "; ")
	deadline := since.Add(r.Timeout)
	if r.DaemonSetPods && !in.PodsKnown && in.Now.Before(deadline) {
		// A moment: the pod watch's first list requeues the node. Said
		// in no event, which would announce a transient.
		return Action{Kind: Wait, Until: deadline, Message: "listing the node's pods for the release gate"}, true
	}
	if !in.Now.Before(deadline) {
		return fail(in.Node, in.Now, contract.ReasonReleaseTimeout,
			fmt.Sprintf("back from its reboot but not healthy within --release-timeout %s: %s", r.Timeout, what)), true
	}
	return Action{Kind: Wait, Reason: contract.ReasonWaitingForRelease, Until: deadline,
		Message: "rebooted and Ready; before the release waiting for: " + what}, true
}

// ParseConditionWants parses --release-conditions items Type=Status (Status
// True, False or Unknown).
func ParseConditionWants(items []string) ([]ConditionWant, error) {
	var out []ConditionWant
	seen := map[string]bool{}
	for _, it := range items {
		t, s, ok := strings.Cut(strings.TrimSpace(it), "=")
		if !ok || t == "" || strings.ContainsAny(t, " \t=") {
			return nil, fmt.Errorf("%q: want ConditionType=Status", it)
		}
		st := v1.ConditionStatus(s)
		if st != v1.ConditionTrue && st != v1.ConditionFalse && st != v1.ConditionUnknown {
			return nil, fmt.Errorf("%q: the status must be True, False or Unknown", it)
		}
		if seen[t] {
			return nil, fmt.Errorf("%q: condition %s given twice", it, t)
		}
		seen[t] = true
		out = append(out, ConditionWant{Type: t, Status: st})
	}
	return out, nil
}

// ValidateTaintPatterns checks --release-taints items: a taint key, or a
// prefix of one followed by "*".
func ValidateTaintPatterns(items []string) error {
	for _, it := range items {
		p := strings.TrimSuffix(it, "*")
		if it == "" || strings.Contains(p, "*") || strings.ContainsAny(p, " \t=:,") || (p == "" && it != "*") {
			return fmt.Errorf("%q: want a taint key, or a key prefix followed by *", it)
		}
		if p == v1.TaintNodeUnschedulable {
			return fmt.Errorf("%q: the cordon's own taint stays until the release", it)
		}
	}
	return nil
}
