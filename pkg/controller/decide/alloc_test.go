package decide

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// TestNodeAtRestAllocatesNothing: the admission pass decides every node
// of the cluster on every pass, and at 5,000 nodes a few allocations per
// node were most of the controller's garbage during a burst of requests
// (bench "scale"). A node with none of the controller's annotations, with
// or without a request, is decided without allocating.
func TestNodeAtRestAllocatesNothing(t *testing.T) {
	for name, n := range map[string]*v1.Node{
		"no request":   node(cond(contract.DefaultConditionType, v1.ConditionFalse, ago(0))),
		"no condition": node(),
	} {
		in := Input{Node: n, Config: &cfg0, Now: now}
		if a := Node(in); a.Kind != Nothing {
			t.Fatalf("%s: decided %v, want Nothing", name, a)
		}
		if allocs := testing.AllocsPerRun(100, func() { Node(in) }); allocs != 0 {
			t.Errorf("%s: %v allocations per decision, want 0", name, allocs)
		}
	}
}
