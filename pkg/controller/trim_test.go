package controller

import (
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// TestTrimNode: the cache's trimmed node decides exactly as the whole node
// would, in every state of the pipeline, and keeps nothing else of the
// status.
func TestTrimNode(t *testing.T) {
	now := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	cfg := decide.Config{Conditions: []string{contract.DefaultConditionType}, MaxConcurrent: 1,
		DrainTimeout: 10 * time.Minute, RebootTimeout: 30 * time.Minute, LifecycleConditions: true,
		Release: decide.ReleaseGate{Conditions: []decide.ConditionWant{{Type: "NetworkReady", Status: v1.ConditionTrue}}, Taints: []string{"t"}, Timeout: time.Hour}}
	whole := func(ann map[string]string, unschedulable bool) *v1.Node {
		q := resource.MustParse("4")
		return &v1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "n1", ResourceVersion: "7", Labels: map[string]string{"topology.kubernetes.io/zone": "a"},
				Annotations:   ann,
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
			Spec: v1.NodeSpec{Unschedulable: unschedulable, Taints: []v1.Taint{{Key: "t", Effect: v1.TaintEffectNoSchedule}}},
			Status: v1.NodeStatus{
				Capacity:    v1.ResourceList{v1.ResourceCPU: q},
				Allocatable: v1.ResourceList{v1.ResourceCPU: q},
				Addresses:   []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "10.0.0.1"}},
				Images:      []v1.ContainerImage{{Names: []string{"pause"}}},
				Conditions: []v1.NodeCondition{
					{Type: v1.NodeReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))},
					{Type: contract.DefaultConditionType, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))},
					{Type: "NetworkReady", Status: v1.ConditionTrue},
				},
				NodeInfo: v1.NodeSystemInfo{BootID: "boot-2", KubeletVersion: "v1.37.2", MachineID: "m", KernelVersion: "6.1"},
			},
		}
	}
	since := contract.FormatTime(now.Add(-time.Minute))
	states := map[string]struct {
		ann           map[string]string
		unschedulable bool
	}{
		"idle, requested": {map[string]string{}, false},
		"draining":        {map[string]string{contract.AnnotationState: "Draining", contract.AnnotationStateSince: since, contract.AnnotationCordonedByUs: "true"}, true},
		"authorized":      {map[string]string{contract.AnnotationState: "Authorized", contract.AnnotationStateSince: since, contract.AnnotationCordonedByUs: "true", contract.AnnotationRebootAuthorized: "boot-1", contract.AnnotationStateReason: contract.AuthorizedReasonPrefix + "boot-1"}, true},
		"rebooted":        {map[string]string{contract.AnnotationState: "Rebooted", contract.AnnotationStateSince: since, contract.AnnotationCordonedByUs: "true", contract.AnnotationRebootAuthorized: "boot-1"}, true},
	}
	for name, st := range states {
		full, trimmed := whole(st.ann, st.unschedulable), whole(st.ann, st.unschedulable)
		trimNode(trimmed)
		slot := &decide.Slot{Since: now.Add(-2 * time.Minute)}
		if name == "idle, requested" {
			slot = nil
		}
		inFull := decide.Input{Node: full, Config: &cfg, Now: now, Slot: slot}
		inTrimmed := decide.Input{Node: trimmed, Config: &cfg, Now: now, Slot: slot}
		a, b := decide.Node(inFull), decide.Node(inTrimmed)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: whole node decides %v, trimmed %v", name, a, b)
		}
		if x, y := decide.Lifecycle(inFull, a), decide.Lifecycle(inTrimmed, b); !reflect.DeepEqual(x, y) {
			t.Errorf("%s: lifecycle conditions differ: %v, trimmed %v", name, x, y)
		}
		if fingerprint(full, &cfg) != fingerprint(trimmed, &cfg) {
			t.Errorf("%s: fingerprints differ", name)
		}
		if trimmed.Status.Capacity != nil || trimmed.Status.Allocatable != nil || trimmed.Status.Addresses != nil ||
			trimmed.Status.Images != nil || trimmed.ManagedFields != nil || trimmed.Status.NodeInfo.MachineID != "" {
			t.Errorf("%s: trimmed node keeps more than the controller reads: %+v", name, trimmed.Status)
		}
	}
}
