package contract

import "encoding/json"

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
