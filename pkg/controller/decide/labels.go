package decide

// Entering and leaving the pipeline: the take's patch, the labels changed
// and restored, the scale-down protection.

import (
	"encoding/json"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// leftovers are the annotations that only make sense with a state.
var leftovers = []string{
	contract.AnnotationStateSince,
	contract.AnnotationStateReason,
	contract.AnnotationCordonedByUs,
	contract.AnnotationRebootAuthorized,
	contract.AnnotationLabelsBefore,
	contract.AnnotationDoNotDisruptByUs,
}

// LabelsBefore parses the node's AnnotationLabelsBefore: label → value
// before the take (nil: absent). ok is false when there is none.
func LabelsBefore(n *v1.Node) (saved map[string]*string, ok bool, err error) {
	raw, ok := n.Annotations[contract.AnnotationLabelsBefore]
	if !ok {
		return nil, false, nil
	}
	if err := json.Unmarshal([]byte(raw), &saved); err != nil {
		return nil, true, fmt.Errorf("invalid JSON object of label values: %v", err)
	}
	return saved, true, nil
}

// leavePatch is the patch of a node leaving the pipeline: its state, its
// claim on the cordon and its authorization removed, and extra (the
// annotations of the way it leaves) set.
func leavePatch(extra map[string]*string) *Patch {
	p := &Patch{Annotations: map[string]*string{
		contract.AnnotationState:            nil,
		contract.AnnotationStateSince:       nil,
		contract.AnnotationStateReason:      nil,
		contract.AnnotationCordonedByUs:     nil,
		contract.AnnotationRebootAuthorized: nil,
	}}
	for k, v := range extra {
		p.Annotations[k] = v
	}
	return p
}

// giveBack adds to p what a node leaving the pipeline (for whatever
// reason) gets back: the labels changed at the take, the end of its
// scale-down protection (now, or --scale-down-protection-after from now),
// and the end of its Karpenter protection (now).
func giveBack(n *v1.Node, cfg *Config, now time.Time, p *Patch) {
	unprotectKarpenter(n, p)
	if saved, ok, err := LabelsBefore(n); ok {
		if err == nil {
			keep, _ := restorableLabels(saved, cfg)
			for k, v := range keep {
				p.SetLabel(k, v)
			}
		}
		p.Annotations[contract.AnnotationLabelsBefore] = nil
	}
	if n.Annotations[contract.AnnotationScaleDownDisabledByUs] == "true" {
		if cfg.ScaleDownProtectionAfter > 0 {
			p.Annotations[contract.AnnotationScaleDownDisabledByUs] = ptr.To(contract.FormatTime(now.Add(cfg.ScaleDownProtectionAfter)))
		} else {
			unprotect(n, p)
		}
	}
}

// unprotectKarpenter removes the do-not-disrupt annotation the controller
// added (the one it left alone it never marked), and its marker.
func unprotectKarpenter(n *v1.Node, p *Patch) {
	if _, ours := n.Annotations[contract.AnnotationDoNotDisruptByUs]; !ours {
		return
	}
	if n.Annotations[contract.AnnotationDoNotDisrupt] == "true" {
		p.Annotations[contract.AnnotationDoNotDisrupt] = nil
	}
	p.Annotations[contract.AnnotationDoNotDisruptByUs] = nil
}

// unprotect removes the scale-down protection the controller added.
func unprotect(n *v1.Node, p *Patch) {
	if n.Annotations[contract.AnnotationScaleDownDisabled] == "true" {
		p.Annotations[contract.AnnotationScaleDownDisabled] = nil
	}
	p.Annotations[contract.AnnotationScaleDownDisabledByUs] = nil
}

// TakePatch is the single patch that takes a node: cordon, state Draining,
// state-since, and cordoned-by-us only when the node was schedulable (an
// administrator's cordon is never undone by the controller).
//
// The same patch sets the pre-reboot labels and removes the post-reboot
// ones (remembering the values they replace in AnnotationLabelsBefore), and
// puts the scale-down protection on.
func TakePatch(n *v1.Node, now time.Time, cfg *Config) *Patch {
	p := &Patch{Unschedulable: new(true), Annotations: map[string]*string{
		contract.AnnotationState:       ptr.To(string(contract.StateDraining)),
		contract.AnnotationStateSince:  ptr.To(contract.FormatTime(now)),
		contract.AnnotationStateReason: nil,
		contract.AnnotationNotBefore:   nil,
	}}
	if !n.Spec.Unschedulable {
		p.Annotations[contract.AnnotationCordonedByUs] = ptr.To("true")
	}
	saved := map[string]*string{}
	for k, v := range cfg.PreRebootLabels {
		saved[k] = nil
		if cur, ok := n.Labels[k]; ok {
			saved[k] = ptr.To(cur)
		}
		p.SetLabel(k, ptr.To(v))
	}
	for k, v := range cfg.PostRebootLabels {
		if _, pre := cfg.PreRebootLabels[k]; !pre && n.Labels[k] == v {
			if _, ok := n.Labels[k]; ok {
				saved[k] = ptr.To(v)
				p.SetLabel(k, nil)
			}
		}
	}
	if len(saved) > 0 {
		b, _ := json.Marshal(saved) // sorted keys
		p.Annotations[contract.AnnotationLabelsBefore] = ptr.To(string(b))
	}
	if cfg.ScaleDownProtection {
		_, ours := n.Annotations[contract.AnnotationScaleDownDisabledByUs]
		if n.Annotations[contract.AnnotationScaleDownDisabled] != "true" || ours {
			p.Annotations[contract.AnnotationScaleDownDisabled] = ptr.To("true")
			p.Annotations[contract.AnnotationScaleDownDisabledByUs] = ptr.To("true")
		}
	}
	if cfg.KarpenterProtection {
		// Only if absent: any value somebody else set (even "false") is
		// theirs; ours from an earlier take stays ours.
		_, ours := n.Annotations[contract.AnnotationDoNotDisruptByUs]
		if _, set := n.Annotations[contract.AnnotationDoNotDisrupt]; !set || ours {
			p.Annotations[contract.AnnotationDoNotDisrupt] = ptr.To("true")
			p.Annotations[contract.AnnotationDoNotDisruptByUs] = ptr.To("true")
		}
	}
	return p
}
