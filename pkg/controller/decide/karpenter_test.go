package decide

import (
	"reflect"
	"testing"
	"time"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

const (
	dnd   = contract.AnnotationDoNotDisrupt
	dndUs = contract.AnnotationDoNotDisruptByUs
)

var karpenterCfg = func() *Config { c := cfg0; c.KarpenterProtection = true; return &c }()

// The take adds karpenter.sh/do-not-disrupt only where it is absent, and
// remembers it is ours.
func TestTakePatchKarpenterProtection(t *testing.T) {
	for _, tc := range []struct {
		name string
		node []nodeOpt
		cfg  *Config
		want map[string]*string // the two keys; absent from the patch: nil entry not listed
	}{
		{name: "absent: added, ours", cfg: karpenterCfg, want: map[string]*string{dnd: set("true"), dndUs: set("true")}},
		{name: "somebody else's true: left alone", node: []nodeOpt{ann(dnd, "true")}, cfg: karpenterCfg, want: map[string]*string{}},
		{name: "somebody else's false: left alone (theirs)", node: []nodeOpt{ann(dnd, "false")}, cfg: karpenterCfg, want: map[string]*string{}},
		{name: "ours from before: ours again", node: []nodeOpt{ann(dnd, "true"), ann(dndUs, "true")}, cfg: karpenterCfg,
			want: map[string]*string{dnd: set("true"), dndUs: set("true")}},
		{name: "off: nothing", cfg: &cfg0, want: map[string]*string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := TakePatch(node(tc.node...), now, tc.cfg)
			got := map[string]*string{}
			for _, k := range []string{dnd, dndUs} {
				if v, ok := p.Annotations[k]; ok {
					got[k] = v
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("patch %s, want %v", dump(p), tc.want)
			}
		})
	}
}

// Whatever way a node leaves the pipeline, the protection the controller
// added ends with it; one it did not add is never touched; a Failed node
// keeps it.
func TestLeavingThePipelineEndsKarpenterProtection(t *testing.T) {
	rebooted := []nodeOpt{state(contract.StateRebooted, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0")}
	ours := []nodeOpt{ann(dnd, "true"), ann(dndUs, "true")}
	for _, tc := range []struct {
		name  string
		node  []nodeOpt
		drain *DrainStatus
		kind  Kind
		want  map[string]*string // keys in the patch (nil: removed)
	}{
		{name: "finish: ours removed", node: append(rebooted, ours...), kind: Finish, want: map[string]*string{dnd: nil, dndUs: nil}},
		{name: "finish, somebody else's: untouched", node: append(rebooted, ann(dnd, "true")), kind: Finish, want: map[string]*string{}},
		{name: "finish, ours changed to false by somebody: only our record removed", node: append(rebooted, ann(dnd, "false"), ann(dndUs, "true")),
			kind: Finish, want: map[string]*string{dndUs: nil}},
		{name: "drain failure (uncordon): ours removed", node: append([]nodeOpt{state(contract.StateDraining, ago(time.Hour))}, ours...),
			drain: &DrainStatus{Pending: 1}, kind: AbandonDrain, want: map[string]*string{dnd: nil, dndUs: nil}},
		{name: "state removed by an operator: ours removed", node: append([]nodeOpt{cordoned, ann(contract.AnnotationCordonedByUs, "true")}, ours...),
			kind: Release, want: map[string]*string{dnd: nil, dndUs: nil}},
		{name: "a leftover record of ours on an idle node: ours removed", node: ours, kind: Release, want: map[string]*string{dnd: nil, dndUs: nil}},
		{name: "Failed: kept (the node is still out)", node: append([]nodeOpt{state(contract.StateFailed, ago(time.Minute)),
			ann(contract.AnnotationStateReason, contract.ReasonRebootTimeout)}, ours...), kind: Wait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Node(held(Input{Node: node(tc.node...), Config: karpenterCfg, Now: now, Drain: tc.drain}))
			if a.Kind != tc.kind {
				t.Fatalf("kind %s (%v), want %s", a.Kind, a, tc.kind)
			}
			got := map[string]*string{}
			if a.Patch != nil {
				for _, k := range []string{dnd, dndUs} {
					if v, ok := a.Patch.Annotations[k]; ok {
						got[k] = v
					}
				}
			}
			if tc.want == nil {
				tc.want = map[string]*string{}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("patch %v, want %v", got, tc.want)
			}
		})
	}
}
