package contract

import (
	"encoding/json"

	v1 "k8s.io/api/core/v1"
)

// Patch is a change of an object's annotations and labels (and of a Node's
// spec.unschedulable), written as one JSON merge patch. It is the one
// renderer of the writes of the controller, the detector and the plugin.
type Patch struct {
	// ResourceVersion, when not empty, makes the API server refuse the
	// patch (409 Conflict) if the object changed since that version.
	ResourceVersion string
	// Unschedulable, when not nil, is the new spec.unschedulable.
	Unschedulable *bool
	// Annotations to set (non-nil value) or remove (nil value).
	Annotations map[string]*string
	// Labels to set (non-nil value) or remove (nil value).
	Labels map[string]*string
}

// MergePatch renders the patch as a JSON merge patch (RFC 7386): a nil
// value removes its key.
func (p *Patch) MergePatch() ([]byte, error) {
	meta := map[string]any{}
	if p.ResourceVersion != "" {
		meta["resourceVersion"] = p.ResourceVersion
	}
	if len(p.Annotations) > 0 {
		meta["annotations"] = p.Annotations
	}
	if len(p.Labels) > 0 {
		meta["labels"] = p.Labels
	}
	doc := map[string]any{"metadata": meta}
	if p.Unschedulable != nil {
		doc["spec"] = map[string]any{"unschedulable": *p.Unschedulable}
	}
	return json.Marshal(doc)
}

// SetLabel records the change of a label: set (non-nil v) or remove.
func (p *Patch) SetLabel(k string, v *string) {
	if p.Labels == nil {
		p.Labels = map[string]*string{}
	}
	p.Labels[k] = v
}

// ConditionsPatch renders node conditions as a strategic-merge patch of
// nodes/status: conditions merge by type, so the node's other conditions are
// left as they are (as node-problem-detector writes its conditions). A
// resourceVersion, when not empty, makes the API server refuse the patch if
// the node changed since that version. It is the one renderer of the
// condition writes of the detector (RebootRequired) and the controller (the
// lifecycle conditions).
func ConditionsPatch(conds []v1.NodeCondition, resourceVersion string) ([]byte, error) {
	doc := map[string]any{"status": map[string]any{"conditions": conds}}
	if resourceVersion != "" {
		doc["metadata"] = map[string]any{"resourceVersion": resourceVersion}
	}
	return json.Marshal(doc)
}
