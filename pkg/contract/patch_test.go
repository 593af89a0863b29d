package contract

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestMergePatch(t *testing.T) {
	x, f := "x", false
	for _, tc := range []struct {
		name string
		p    Patch
		want string
	}{
		{"empty", Patch{}, `{"metadata":{}}`},
		{"set, remove, cordon, guarded",
			Patch{ResourceVersion: "42", Unschedulable: &f, Annotations: map[string]*string{"a": &x, "b": nil}},
			`{"metadata":{"annotations":{"a":"x","b":null},"resourceVersion":"42"},"spec":{"unschedulable":false}}`},
		{"labels", Patch{Labels: map[string]*string{"l": nil, "m": &x}}, `{"metadata":{"labels":{"l":null,"m":"x"}}}`},
	} {
		b, err := tc.p.MergePatch()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, b, tc.want)
		}
	}
}

func TestConditionsPatch(t *testing.T) {
	conds := []v1.NodeCondition{{Type: "RebootRequired", Status: v1.ConditionTrue, Reason: "SentinelPresent"}}
	for _, tc := range []struct{ rv, want string }{
		{"", `{"status":{"conditions":[{"type":"RebootRequired","status":"True","lastHeartbeatTime":null,"lastTransitionTime":null,"reason":"SentinelPresent"}]}}`},
		{"42", `{"metadata":{"resourceVersion":"42"},"status":{"conditions":[{"type":"RebootRequired","status":"True","lastHeartbeatTime":null,"lastTransitionTime":null,"reason":"SentinelPresent"}]}}`},
	} {
		got, err := ConditionsPatch(conds, tc.rv)
		if err != nil || string(got) != tc.want {
			t.Errorf("ConditionsPatch(rv %q) = %s, %v; want %s", tc.rv, got, err, tc.want)
		}
	}
}
