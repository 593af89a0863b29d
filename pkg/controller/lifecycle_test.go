package controller

import (
	"encoding/json"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// statusPatches records the controller's patches of nodes/status and
// whether each changed a condition's status or reason (a patch that changes
// nothing is API load for nothing).
type statusPatches struct {
	mu      sync.Mutex
	count   int
	useless []string
}

func (s *statusPatches) reactor(f *fakeAPI) k8stesting.ReactionFunc {
	return func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" {
			return false, nil, nil
		}
		pa := a.(k8stesting.PatchAction)
		var doc struct {
			Metadata struct {
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
			Status struct {
				Conditions []v1.NodeCondition `json:"conditions"`
			} `json:"status"`
		}
		_ = json.Unmarshal(pa.GetPatch(), &doc)
		obj, err := f.Tracker().Get(nodesGVR, "", pa.GetName())
		if err != nil || doc.Metadata.ResourceVersion != obj.(*v1.Node).ResourceVersion {
			// Refused (409): decided on a version the simulated
			// kubelet has since replaced; not a write.
			return false, nil, nil
		}
		changes := false
		for _, c := range doc.Status.Conditions {
			cur := contract.Condition(obj.(*v1.Node), string(c.Type))
			changes = changes || cur == nil || cur.Status != c.Status || cur.Reason != c.Reason
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.count++
		if !changes {
			s.useless = append(s.useless, string(pa.GetPatch()))
		}
		return false, nil, nil
	}
}

// lifecycleOver reports whether the node shows every lifecycle condition
// False, written by the controller: each state the node passed through was
// shown, and all of them ended.
func lifecycleOver(n *v1.Node) bool {
	for _, t := range contract.LifecycleConditions {
		if c := contract.Condition(n, t); c == nil || c.Status != v1.ConditionFalse || !contract.LifecycleOurs(c.Message) {
			return false
		}
	}
	return true
}

func TestLifecycleConditionsThroughAReboot(t *testing.T) {
	f := newFakeAPI(t, testNode("n1", true), testNode("idle", false), testPod("web-1", "n1"))
	var sp statusPatches
	f.PrependReactor("patch", "nodes", sp.reactor(f))
	cfg := testConfig(1)
	cfg.Decide.LifecycleConditions = true
	_, _, _, ctx := startController(t, f, cfg)
	simulateReboots(ctx, t, f, map[string]int{}, &sync.Mutex{})

	waitAll(ctx, t, f, []string{"n1"}, func(n *v1.Node) bool {
		return done(n) && lifecycleOver(n)
	}, "n1 rebooted and its lifecycle conditions all False")
	idle, _ := f.Tracker().Get(nodesGVR, "", "idle")
	for _, ty := range contract.LifecycleConditions {
		if c := contract.Condition(idle.(*v1.Node), ty); c != nil {
			t.Errorf("the idle node got %s=%s", ty, c.Status)
		}
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if len(sp.useless) > 0 {
		t.Errorf("%d status patches changed nothing: %q", len(sp.useless), sp.useless)
	}
	if sp.count == 0 {
		t.Errorf("no status patch")
	}
}

func TestLifecycleConditionsOff(t *testing.T) {
	f := newFakeAPI(t, testNode("n1", true))
	var sp statusPatches
	f.PrependReactor("patch", "nodes", sp.reactor(f))
	_, _, _, ctx := startController(t, f, testConfig(1))
	simulateReboots(ctx, t, f, map[string]int{}, &sync.Mutex{})
	waitAll(ctx, t, f, []string{"n1"}, done, "n1 rebooted")
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.count != 0 {
		t.Errorf("%d status patches with --lifecycle-conditions=false", sp.count)
	}
}
