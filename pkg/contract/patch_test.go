package contract

import "testing"

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
