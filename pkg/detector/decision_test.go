package detector

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

const (
	bootA = "0f3c9a52-5d64-4b8e-9a51-0c2b7f6a1e01" // the current boot
	bootB = "7d2e1b40-8a3f-4c6d-b9e2-5f1a0c3d4e02" // an earlier boot
	bootC = "c4b5a697-1e2d-4f3a-8b7c-9d0e1f2a3b03" // some other boot ID
)

func nodeWith(ann map[string]string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-0", Annotations: ann}, Spec: v1.NodeSpec{Unschedulable: true}}
}

// full is the controller's whole authorization of boot plus extra.
func full(boot string, extra map[string]string) map[string]string {
	ann := map[string]string{
		contract.AnnotationRebootAuthorized: boot,
		contract.AnnotationState:            string(contract.StateAuthorized),
		contract.AnnotationStateReason:      contract.AuthorizedReason(boot),
	}
	for k, v := range extra {
		ann[k] = v
	}
	return ann
}

// A reboot-authorized that names the current boot is not enough: anyone
// who may patch the Node could have written it.
func TestForgedAuthorizationIsNoReboot(t *testing.T) {
	authz, state, reason := contract.AnnotationRebootAuthorized, contract.AnnotationState, contract.AnnotationStateReason
	for _, tc := range []struct {
		name      string
		ann       map[string]string
		cordoned  bool
		wantWords string
	}{
		{"reboot-authorized alone", map[string]string{authz: bootA}, true, "not Authorized"},
		{"not cordoned", full(bootA, nil), false, "not cordoned"},
		{"state Draining", full(bootA, map[string]string{state: string(contract.StateDraining)}), true, "not Authorized"},
		{"state-reason names another boot", full(bootA, map[string]string{reason: contract.AuthorizedReason(bootC)}), true, "does not record"},
		{"state-reason missing", full(bootA, map[string]string{reason: ""}), true, "does not record"},
		{"resume without the rest", map[string]string{authz: bootA, contract.AnnotationRebooting: bootA}, true, "not Authorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := nodeWith(tc.ann)
			n.Spec.Unschedulable = tc.cordoned
			d := rebootDecision(n, bootA, sets.New[string]())
			if d.Reboot || d.Resume {
				t.Fatalf("reboot on %v (cordoned %v): %+v", tc.ann, tc.cordoned, d)
			}
			if d.InvalidValue == "" || !strings.Contains(d.Invalid, tc.wantWords) {
				t.Fatalf("no warning naming %q: %+v", tc.wantWords, d)
			}
		})
	}
}

func TestRebootDecision(t *testing.T) {
	authz, rebooting, state := contract.AnnotationRebootAuthorized, contract.AnnotationRebooting, contract.AnnotationState
	for _, tc := range []struct {
		name     string
		ann      map[string]string
		previous []string
		want     Decision
	}{
		{name: "no annotations", want: Decision{}},
		{name: "authorization matches the current boot", ann: full(bootA, nil),
			want: Decision{Reboot: true}},
		{name: "matches, rebooting already written (killed before the reboot)", ann: full(bootA, map[string]string{rebooting: bootA}),
			want: Decision{Reboot: true, Resume: true}},
		{name: "empty authorization", ann: map[string]string{authz: ""}, want: Decision{}},
		{name: "garbage", ann: map[string]string{authz: "yes"},
			want: Decision{InvalidValue: "yes", Invalid: `nodereboot.io/reboot-authorized="yes" is not a boot ID (want the node's current boot ID ` + bootA + `): no reboot`}},
		{name: "whitespace around the boot ID is not the boot ID", ann: map[string]string{authz: " " + bootA},
			want: Decision{InvalidValue: " " + bootA, Invalid: `nodereboot.io/reboot-authorized=" ` + bootA + `" is not a boot ID (want the node's current boot ID ` + bootA + `): no reboot`}},
		{name: "another boot ID (mismatch)", ann: map[string]string{authz: bootC},
			want: Decision{InvalidValue: bootC, Invalid: `nodereboot.io/reboot-authorized="` + bootC + `" is not the current boot ID ` + bootA + ` of this node, nor a boot it rebooted from: no reboot`}},
		{name: "after the reboot: rebooting and authorization hold the old boot", ann: map[string]string{authz: bootB, rebooting: bootB},
			want: Decision{Rebooted: true, OldBootID: bootB}},
		{name: "after the reboot, authorization already cleared", ann: map[string]string{rebooting: bootB},
			want: Decision{Rebooted: true, OldBootID: bootB}},
		{name: "stale authorization of a boot this process cleaned up", ann: map[string]string{authz: bootB}, previous: []string{bootB},
			want: Decision{}},
		{name: "stale authorization, controller saw the reboot (state Rebooted)", ann: map[string]string{authz: bootB, state: string(contract.StateRebooted)},
			want: Decision{}},
		{name: "old authorization while the controller still waits: invalid", ann: map[string]string{authz: bootB, state: string(contract.StateAuthorized)},
			want: Decision{InvalidValue: bootB, Invalid: `nodereboot.io/reboot-authorized="` + bootB + `" is not the current boot ID ` + bootA + ` of this node, nor a boot it rebooted from: no reboot`}},
		{name: "rebooted and already authorized again for the new boot", ann: full(bootA, map[string]string{rebooting: bootB}),
			want: Decision{Rebooted: true, OldBootID: bootB, Reboot: true}},
		{name: "rebooted, authorization is garbage", ann: map[string]string{authz: "true", rebooting: bootB},
			want: Decision{Rebooted: true, OldBootID: bootB, InvalidValue: "true", Invalid: `nodereboot.io/reboot-authorized="true" is not a boot ID (want the node's current boot ID ` + bootA + `): no reboot`}},
		{name: "authorization withdrawn after rebooting was written", ann: map[string]string{rebooting: bootA},
			want: Decision{ClearRebooting: true}},
		{name: "authorization changed after rebooting was written", ann: map[string]string{rebooting: bootA, authz: bootC},
			want: Decision{ClearRebooting: true, InvalidValue: bootC, Invalid: `nodereboot.io/reboot-authorized="` + bootC + `" is not the current boot ID ` + bootA + ` of this node, nor a boot it rebooted from: no reboot`}},
		{name: "garbage in rebooting never reboots", ann: map[string]string{rebooting: "garbage"},
			want: Decision{Rebooted: true, OldBootID: "garbage"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := rebootDecision(nodeWith(tc.ann), bootA, sets.New(tc.previous...))
			if got != tc.want {
				t.Errorf("rebootDecision =\n  %+v\nwant\n  %+v", got, tc.want)
			}
			if got.Reboot && tc.ann[authz] != bootA {
				t.Errorf("a reboot without an authorization of the current boot")
			}
		})
	}
}
