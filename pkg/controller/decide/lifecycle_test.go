package decide

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

const (
	mp  = contract.ConditionMaintenancePlanned
	dip = contract.ConditionDrainInProgress
	drd = contract.ConditionDrained
	mip = contract.ConditionMaintenanceInProgress
)

var lcCfg = func() *Config { c := cfg0; c.LifecycleConditions = true; return &c }()

// lc puts a lifecycle condition on the node, written by the controller
// (ours) or by somebody else, last transition an hour ago.
func lc(t string, s v1.ConditionStatus, reason string, ours bool) nodeOpt {
	return func(n *v1.Node) {
		msg := "set by an administrator"
		if ours {
			msg = contract.LifecycleMessagePrefix + "earlier"
		}
		n.Status.Conditions = append(n.Status.Conditions, v1.NodeCondition{Type: v1.NodeConditionType(t), Status: s,
			Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(ago(time.Hour))})
	}
}

// slotted gives the node a slot.
func slotted(in Input) Input { in.Slot = &Slot{Since: ago(time.Hour)}; return in }

func render(cs []v1.NodeCondition) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	return strings.Join(parts, " ")
}

func TestLifecycle(t *testing.T) {
	const (
		T = v1.ConditionTrue
		F = v1.ConditionFalse
	)
	authorized := []nodeOpt{state(contract.StateAuthorized, ago(time.Minute)),
		ann(contract.AnnotationRebootAuthorized, "boot-1"), ann(contract.AnnotationStateReason, contract.AuthorizedReason("boot-1"))}
	for _, tc := range []struct {
		name string
		in   Input
		kind Kind
		want string
	}{
		{name: "idle, nothing shown: nothing written (no False created)",
			in: Input{Node: node()}, kind: Nothing},
		{name: "queued: MaintenancePlanned",
			in: Input{Node: node(required(ago(time.Minute)))}, kind: Queue, want: "MaintenancePlanned=True/RebootQueued"},
		{name: "queued, already shown: nothing",
			in:   Input{Node: node(required(ago(time.Minute)), lc(mp, T, contract.ReasonRebootQueued, true))},
			kind: Queue},
		{name: "queued, an administrator's MaintenancePlanned=True: left alone",
			in:   Input{Node: node(required(ago(time.Minute)), lc(mp, T, "AdminRequested", false))},
			kind: Queue},
		{name: "queued, an administrator's MaintenancePlanned=False: True",
			in:   Input{Node: node(required(ago(time.Minute)), lc(mp, F, "AdminRequested", false))},
			kind: Queue, want: "MaintenancePlanned=True/RebootQueued"},
		{name: "taken (Draining): DrainInProgress; no False created",
			in:   slotted(Input{Node: node(state(contract.StateDraining, ago(time.Minute)), lc(mp, T, contract.ReasonRebootQueued, true))}),
			kind: Drain, want: "DrainInProgress=True/Draining"},
		{name: "Draining, all shown already: nothing",
			in: slotted(Input{Node: node(state(contract.StateDraining, ago(time.Minute)),
				lc(mp, T, contract.ReasonRebootQueued, true), lc(dip, T, contract.ReasonDraining, true))}),
			kind: Drain},
		{name: "Draining, taken straight from idle: MaintenancePlanned and DrainInProgress",
			in:   slotted(Input{Node: node(state(contract.StateDraining, ago(time.Minute)))}),
			kind: Drain, want: "MaintenancePlanned=True/RebootQueued DrainInProgress=True/Draining"},
		{name: "Draining, a Drained=True left by somebody else: False (the node is ours now)",
			in:   slotted(Input{Node: node(state(contract.StateDraining, ago(time.Minute)), lc(mp, T, contract.ReasonRebootQueued, true), lc(dip, T, contract.ReasonDraining, true), lc(drd, T, "DrainCompleted", false))}),
			kind: Drain, want: "Drained=False/Draining"},
		{name: "Authorized: drain over, Drained, MaintenanceInProgress",
			in:   slotted(Input{Node: node(append(authorized, lc(mp, T, contract.ReasonRebootQueued, true), lc(dip, T, contract.ReasonDraining, true))...)}),
			kind: Wait, want: "DrainInProgress=False/DrainCompleted Drained=True/DrainCompleted MaintenanceInProgress=True/RebootAuthorized"},
		{name: "Rebooted: MaintenanceInProgress's reason changes",
			in: slotted(Input{Node: node(state(contract.StateRebooted, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0"),
				lc(mp, T, contract.ReasonRebootQueued, true), lc(dip, F, contract.ReasonDrainCompleted, true), lc(drd, T, contract.ReasonDrainCompleted, true),
				lc(mip, T, contract.ReasonRebootAuthorized, true))}),
			kind: Wait, want: "MaintenanceInProgress=True/Rebooted"},
		{name: "Failed by a reboot timeout: reason from the state-reason, Drained left as is",
			in: slotted(Input{Node: node(state(contract.StateFailed, ago(time.Minute)), ann(contract.AnnotationStateReason, contract.ReasonRebootTimeout),
				lc(mp, T, contract.ReasonRebootQueued, true), lc(dip, F, contract.ReasonDrainCompleted, true), lc(drd, T, contract.ReasonDrainCompleted, true),
				lc(mip, T, contract.ReasonRebootAuthorized, true))}),
			kind: Wait, want: "MaintenanceInProgress=True/RebootTimeout"},
		{name: "Failed with a state-reason that is no reason: RebootFailed",
			in: slotted(Input{Node: node(state(contract.StateFailed, ago(time.Minute)), ann(contract.AnnotationStateReason, "drain failed: 3 pods"),
				lc(dip, T, contract.ReasonDraining, true))}),
			kind: Wait, want: "MaintenancePlanned=True/RebootQueued DrainInProgress=False/RebootFailed MaintenanceInProgress=True/RebootFailed"},
		{name: "done (idle, slot given back): all ours False",
			in: Input{Node: node(lc(mp, T, contract.ReasonRebootQueued, true), lc(dip, F, contract.ReasonDrainCompleted, true),
				lc(drd, T, contract.ReasonDrainCompleted, true), lc(mip, T, contract.ReasonRebooted, true))},
			kind: Nothing, want: "MaintenancePlanned=False/NoRebootInProgress Drained=False/NoRebootInProgress MaintenanceInProgress=False/NoRebootInProgress"},
		{name: "idle, somebody else's conditions True: left alone",
			in: Input{Node: node(lc(mp, T, "AdminRequested", false), lc(dip, T, "AdminRequested", false),
				lc(drd, T, "DrainCompleted", false), lc(mip, T, "AdminRequested", false))},
			kind: Nothing},
		{name: "idle after done, all False already: nothing",
			in: Input{Node: node(lc(mp, F, contract.ReasonLifecycleIdle, true), lc(dip, F, contract.ReasonLifecycleIdle, true),
				lc(drd, F, contract.ReasonLifecycleIdle, true), lc(mip, F, contract.ReasonLifecycleIdle, true))},
			kind: Nothing},
		{name: "a forged state without a slot is no pipeline: nothing True",
			in:   Input{Node: node(authorized...)},
			kind: Reset},
		{name: "a forged state without a slot, our old conditions True: False",
			in:   Input{Node: node(append(authorized, lc(mip, T, contract.ReasonRebootAuthorized, true))...)},
			kind: Reset, want: "MaintenanceInProgress=False/NoRebootInProgress"},
		{name: "invalid state with a slot: nothing until it is reset",
			in:   slotted(Input{Node: node(ann(contract.AnnotationState, "Bogus"), cordoned)}),
			kind: Reset},
		{name: "state removed while the reboot is under way (slot kept): left as is",
			in:   slotted(Input{Node: node(cordoned, lc(mip, T, contract.ReasonRebootAuthorized, true))}),
			kind: Wait},
		{name: "off: nothing",
			in:   Input{Node: node(required(ago(time.Minute))), Config: &cfg0},
			kind: Queue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Now = now
			if in.Config == nil {
				in.Config = lcCfg
			}
			got := Lifecycle(in, Action{Kind: tc.kind})
			if r := render(got); r != tc.want {
				t.Fatalf("wrote %q, want %q", r, tc.want)
			}
			for _, c := range got {
				if !contract.LifecycleOurs(c.Message) || !c.LastHeartbeatTime.Time.Equal(now) {
					t.Errorf("%s: message %q, heartbeat %v: want ours, now", c.Type, c.Message, c.LastHeartbeatTime)
				}
				old := contract.Condition(in.Node, string(c.Type))
				wantLTT := now
				if old != nil && old.Status == c.Status {
					wantLTT = old.LastTransitionTime.Time
				}
				if !c.LastTransitionTime.Time.Equal(wantLTT) {
					t.Errorf("%s: lastTransitionTime %v, want %v", c.Type, c.LastTransitionTime, wantLTT)
				}
			}
			// Written, the node shows what it should: no second write.
			in.Node = applyConditions(in.Node, got)
			if again := Lifecycle(in, Action{Kind: tc.kind}); len(again) > 0 {
				t.Errorf("after the write, writes again %q", render(again))
			}
		})
	}
}

// applyConditions merges conditions into a copy of the node by type, as the
// API server's strategic merge of status.conditions does.
func applyConditions(n *v1.Node, cs []v1.NodeCondition) *v1.Node {
	n = n.DeepCopy()
	for _, c := range cs {
		if cur := contract.Condition(n, string(c.Type)); cur != nil {
			*cur = c
		} else {
			n.Status.Conditions = append(n.Status.Conditions, c)
		}
	}
	return n
}

// TestLifecycleThroughThePipeline follows one node from the queue to done
// and checks the sequence each condition goes through.
func TestLifecycleThroughThePipeline(t *testing.T) {
	steps := []struct {
		node func(*v1.Node)
		slot bool
		kind Kind
	}{
		{node: func(n *v1.Node) { required(ago(time.Minute))(n) }, kind: Queue},
		{node: func(n *v1.Node) { state(contract.StateDraining, now)(n) }, slot: true, kind: Drain},
		{node: func(n *v1.Node) {
			state(contract.StateAuthorized, now)(n)
			n.Annotations[contract.AnnotationRebootAuthorized] = "boot-1"
		}, slot: true, kind: Wait},
		{node: func(n *v1.Node) { state(contract.StateRebooted, now)(n) }, slot: true, kind: Wait},
		{node: func(n *v1.Node) {
			for _, k := range []string{contract.AnnotationState, contract.AnnotationStateSince, contract.AnnotationCordonedByUs, contract.AnnotationRebootAuthorized} {
				delete(n.Annotations, k)
			}
			n.Spec.Unschedulable = false
		}, kind: Nothing},
	}
	n := node()
	seen := map[v1.NodeConditionType][]string{}
	for i, s := range steps {
		s.node(n)
		in := Input{Node: n, Config: lcCfg, Now: now.Add(time.Duration(i) * time.Second)}
		if s.slot {
			in.Slot = &Slot{Since: now}
		}
		cs := Lifecycle(in, Action{Kind: s.kind})
		for _, c := range cs {
			seen[c.Type] = append(seen[c.Type], string(c.Status))
		}
		n = applyConditions(n, cs)
	}
	want := map[v1.NodeConditionType]string{
		mp:  "True False",
		dip: "True False",
		drd: "True False",
		mip: "True True False", // RebootAuthorized, then Rebooted
	}
	for ty, w := range want {
		if got := strings.Join(seen[ty], " "); got != w {
			t.Errorf("%s went %q, want %q", ty, got, w)
		}
	}
}
