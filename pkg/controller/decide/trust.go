package decide

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// This file holds what keeps the controller's decisions safe against any
// writer of Node annotations (docs/node-contract.md, "Trust"): which
// annotations put a node out, what the controller does about a state it did
// not write, and the bounds of the times and labels it reads back.

// Slot is the node's entry in the slot record (pkg/controller/slots): the
// controller's own proof that it put the node out.
type Slot struct {
	// Since is when the node was taken.
	Since time.Time
}

// MaxClockSkew is how far in the future a time annotation may lie (the
// clocks of two controller replicas may differ) before it is out of bounds.
const MaxClockSkew = 5 * time.Minute

// ControlPlaneLabels mark a control-plane node (the second is the name of
// clusters older than 1.24).
var ControlPlaneLabels = []string{"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}

// IsControlPlane reports whether the node carries a control-plane role
// label.
func IsControlPlane(n *v1.Node) bool {
	for _, l := range ControlPlaneLabels {
		if _, ok := n.Labels[l]; ok {
			return true
		}
	}
	return false
}

// pipelineMarks are the annotations that say a node is in the pipeline.
var pipelineMarks = []string{
	contract.AnnotationState, contract.AnnotationCordonedByUs, contract.AnnotationRebootAuthorized,
}

// Marked reports whether the node carries anything that puts it out,
// whoever wrote it: a controller-owned pipeline annotation (state,
// cordoned-by-us, reboot-authorized), or the detector's rebooting naming the
// current boot (its reboot is under way). Every marked node counts against
// --max-concurrent.
func Marked(n *v1.Node) bool {
	for _, k := range pipelineMarks {
		if _, ok := n.Annotations[k]; ok {
			return true
		}
	}
	return RebootUnderWay(n)
}

// RebootUnderWay reports whether the detector has committed the reboot of
// the node's current boot (nodereboot.io/rebooting names it).
func RebootUnderWay(n *v1.Node) bool {
	r := n.Annotations[contract.AnnotationRebooting]
	return r != "" && r == n.Status.NodeInfo.BootID
}

// controllerRecords are the annotations, besides pipelineMarks, that only
// the controller writes on a node that holds a slot.
var controllerRecords = []string{contract.AnnotationStateSince, contract.AnnotationStateReason, contract.AnnotationLabelsBefore}

// foreign resets the controller-owned annotations of a node that holds no
// slot: the controller did not put it out, so whoever wrote them is not the
// controller. They are removed — never acted on, never advanced — and the
// node's cordon is left as it is (the controller uncordons only nodes it
// cordoned, and it did not cordon this one).
func foreign(n *v1.Node) (Action, bool) {
	var found []string
	for _, keys := range [][]string{pipelineMarks, controllerRecords} {
		for _, k := range keys {
			if _, ok := n.Annotations[k]; ok {
				found = append(found, k)
			}
		}
	}
	if len(found) == 0 {
		return Action{}, false
	}
	p := &Patch{Annotations: make(map[string]*string, len(found))}
	for _, k := range found {
		p.Annotations[k] = nil
	}
	slices.Sort(found)
	return Action{Kind: Reset, Reason: contract.ReasonInvalidAnnotation, Patch: p,
		Message: fmt.Sprintf("%s not written by the controller: the node holds no slot in the slot record (ConfigMap %s); removed, the node's cordon left as it is",
			strings.Join(found, ", "), contract.SlotsConfigMapName)}, true
}

// boundTimes checks the time annotations against their bounds: none may lie
// further in the future than the longest wait that writes it allows (plus
// MaxClockSkew), and state-since not before the node was taken (the slot's
// Since). A time out of bounds is set to the safe side (the wait starts
// now); it never shortens a wait nor disables a timeout.
func boundTimes(n *v1.Node, in Input, state contract.State, bad func(string, ...any), p *Patch) {
	now, cfg := in.Now, in.Config
	ann := n.Annotations
	setNow := func(k, why string, at time.Time) {
		bad("%s=%q %s: set to %s", k, ann[k], why, contract.FormatTime(at))
		p.Annotations[k] = ptr.To(contract.FormatTime(at))
	}
	if t, err := contract.ParseTime(ann[contract.AnnotationStateSince]); err == nil && state.Active() {
		switch {
		case t.After(now.Add(MaxClockSkew)):
			setNow(contract.AnnotationStateSince, "is in the future", now)
		case in.Slot != nil && t.Before(in.Slot.Since.Add(-MaxClockSkew)):
			setNow(contract.AnnotationStateSince, "is before the node was taken ("+contract.FormatTime(in.Slot.Since)+")", now)
		}
	}
	if t, err := contract.ParseTime(ann[contract.AnnotationNotBefore]); err == nil {
		if max := now.Add(cfg.DrainFailureBackoff + MaxClockSkew); t.After(max) {
			setNow(contract.AnnotationNotBefore, "is further away than --drain-failure-backoff", now.Add(cfg.DrainFailureBackoff))
		}
	}
	if t, err := contract.ParseTime(ann[contract.AnnotationLastReboot]); err == nil && t.After(now.Add(MaxClockSkew)) {
		setNow(contract.AnnotationLastReboot, "is in the future", now)
	}
	if s := ann[contract.AnnotationScaleDownDisabledByUs]; s != "true" {
		if t, err := contract.ParseTime(s); err == nil {
			if max := now.Add(cfg.ScaleDownProtectionAfter + MaxClockSkew); t.After(max) {
				setNow(contract.AnnotationScaleDownDisabledByUs, "is further away than --scale-down-protection-after", now.Add(cfg.ScaleDownProtectionAfter))
			}
		}
	}
}

// restorableLabels returns, of the labels recorded in labels-before-reboot,
// those the controller may restore: only the keys it was configured to
// change (--pre-reboot-node-labels, --post-reboot-node-labels), with valid
// keys and values. dropped describes the others.
func restorableLabels(saved map[string]*string, cfg *Config) (keep map[string]*string, dropped []string) {
	keep = map[string]*string{}
	for _, k := range slices.Sorted(maps.Keys(saved)) {
		v := saved[k]
		_, pre := cfg.PreRebootLabels[k]
		_, post := cfg.PostRebootLabels[k]
		switch {
		case !pre && !post:
			dropped = append(dropped, fmt.Sprintf("%q (not a configured label)", k))
		case len(validation.IsQualifiedName(k)) > 0:
			dropped = append(dropped, fmt.Sprintf("%q (not a valid label key)", k))
		case v != nil && len(validation.IsValidLabelValue(*v)) > 0:
			dropped = append(dropped, fmt.Sprintf("%q (invalid value)", k))
		default:
			keep[k] = v
		}
	}
	return keep, dropped
}

// boundLabels checks labels-before-reboot: a key the controller was not
// configured to change, or an invalid key or value, is dropped from it (and
// never written to the node).
func boundLabels(n *v1.Node, cfg *Config, bad func(string, ...any), p *Patch) {
	saved, ok, err := LabelsBefore(n)
	if !ok {
		return
	}
	if err != nil {
		bad("%s: %v: removed (the labels it recorded are not restored)", contract.AnnotationLabelsBefore, err)
		p.Annotations[contract.AnnotationLabelsBefore] = nil
		return
	}
	keep, dropped := restorableLabels(saved, cfg)
	if len(dropped) == 0 {
		return
	}
	bad("%s names labels the controller may not restore: %s: dropped", contract.AnnotationLabelsBefore, strings.Join(dropped, ", "))
	if len(keep) == 0 {
		p.Annotations[contract.AnnotationLabelsBefore] = nil
		return
	}
	b, _ := json.Marshal(keep)
	p.Annotations[contract.AnnotationLabelsBefore] = ptr.To(string(b))
}

// rebootDeadline is the latest a node taken at slot.Since can still be in a
// legitimate reboot: the whole drain and the whole reboot timeout.
func rebootDeadline(slot *Slot, cfg *Config) time.Time {
	return slot.Since.Add(cfg.DrainTimeout + cfg.RebootTimeout)
}

// KeepsSlot reports whether a node that holds a slot must keep it: it is
// marked (see Marked), or its state was removed while its reboot is under
// way and the reboot may still happen (invariant: a reboot under way keeps
// its node cordoned and counted until the new boot or --reboot-timeout).
func KeepsSlot(in Input) bool {
	n := in.Node
	for _, k := range pipelineMarks {
		if _, ok := n.Annotations[k]; ok {
			return true
		}
	}
	return RebootUnderWay(n) && in.Slot != nil && in.Now.Before(rebootDeadline(in.Slot, in.Config))
}
