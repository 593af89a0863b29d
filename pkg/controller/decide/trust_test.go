package decide

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// Each attack of the trust issue, played on the decision: what somebody
// with node patch rights (but not the controller's slot record) writes is
// never acted on.
func TestForgedAnnotationsWithoutASlot(t *testing.T) {
	for _, tc := range []struct {
		name string
		node *v1.Node
	}{
		{"state Draining on every node", node(required(ago(time.Hour)), ann(contract.AnnotationState, "Draining"))},
		{"state Authorized with an authorization", node(cordoned, ann(contract.AnnotationState, "Authorized"),
			ann(contract.AnnotationStateSince, ts(ago(time.Minute))),
			ann(contract.AnnotationRebootAuthorized, "boot-1"), ann(contract.AnnotationStateReason, contract.AuthorizedReason("boot-1")))},
		{"reboot-authorized alone", node(ann(contract.AnnotationRebootAuthorized, "boot-1"))},
		{"cordoned-by-us on an administrator's cordon", node(cordoned, ann(contract.AnnotationCordonedByUs, "true"))},
		{"state Rebooted, to be uncordoned", node(cordoned, ann(contract.AnnotationState, "Rebooted"),
			ann(contract.AnnotationCordonedByUs, "true"), ann(contract.AnnotationStateSince, ts(ago(time.Hour))))},
		{"labels to restore", node(ann(contract.AnnotationLabelsBefore, `{"node-restriction.kubernetes.io/trusted":"yes"}`))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Node(Input{Node: tc.node, Config: &cfg0, Now: now, Drain: &DrainStatus{}})
			if a.Kind != Reset || a.Reason != contract.ReasonInvalidAnnotation {
				t.Fatalf("got %v, want a Reset with reason %s", a, contract.ReasonInvalidAnnotation)
			}
			if a.Patch.Unschedulable != nil || len(a.Patch.Labels) > 0 {
				t.Fatalf("the reset changes the cordon or labels: %s", dump(a.Patch))
			}
			for k, v := range a.Patch.Annotations {
				if v != nil {
					t.Fatalf("the reset writes %s=%s", k, *v)
				}
			}
			if !strings.Contains(a.Message, "holds no slot") {
				t.Errorf("message %q does not say why", a.Message)
			}
		})
	}
}

func TestLabelsRestoredOnlyWhenConfigured(t *testing.T) {
	c := cfg0
	c.PreRebootLabels = map[string]string{"rebooting": "true"}
	saved := `{"rebooting":null,"node-restriction.kubernetes.io/trusted":"yes","bad key!":"x"}`
	n := node(state(contract.StateRebooted, ago(time.Hour)), ann(contract.AnnotationRebootAuthorized, "boot-0"),
		ann(contract.AnnotationLabelsBefore, saved))
	a := Node(held(Input{Node: n, Config: &c, Now: now}))
	if a.Kind != Reset {
		t.Fatalf("got %v, want the unconfigured labels dropped", a)
	}
	kept := a.Patch.Annotations[contract.AnnotationLabelsBefore]
	if kept == nil || *kept != `{"rebooting":null}` {
		t.Fatalf("labels-before-reboot rewritten to %v, want only the configured key", kept)
	}
	// Even unvalidated, leaving the pipeline restores only configured keys.
	p := &Patch{Annotations: map[string]*string{}}
	giveBack(n, &c, now, p)
	if len(p.Labels) != 1 || p.Labels["rebooting"] != nil {
		t.Fatalf("giveBack writes labels %v, want only rebooting removed", p.Labels)
	}
}

func TestTimesOutOfBounds(t *testing.T) {
	reboot := cfg0
	reboot.OnDrainFailure = DrainFailureReboot
	taken := ago(time.Minute)
	slot := &Slot{Since: taken}
	for _, tc := range []struct {
		name string
		node *v1.Node
		cfg  *Config
		key  string
	}{
		{"state-since long before the take, with --on-drain-failure=reboot",
			node(state(contract.StateDraining, ago(24*time.Hour))), &reboot, contract.AnnotationStateSince},
		{"state-since in year 9999 disables the timeouts",
			node(state(contract.StateAuthorized, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)),
				ann(contract.AnnotationRebootAuthorized, "boot-1"), ann(contract.AnnotationStateReason, contract.AuthorizedReason("boot-1"))),
			&cfg0, contract.AnnotationStateSince},
		{"not-before in year 9999", node(required(ago(time.Hour)), ann(contract.AnnotationNotBefore, "9999-01-01T00:00:00Z")),
			&cfg0, contract.AnnotationNotBefore},
		{"last-reboot in the future", node(required(ago(time.Hour)), ann(contract.AnnotationLastReboot, ts(now.Add(time.Hour)))),
			&cfg0, contract.AnnotationLastReboot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Node(Input{Node: tc.node, Config: tc.cfg, Now: now, Slot: slot, Drain: &DrainStatus{Pending: 3}})
			if a.Kind != Reset {
				t.Fatalf("got %v, want a Reset", a)
			}
			v := a.Patch.Annotations[tc.key]
			if v == nil {
				t.Fatalf("%s not reset: %s", tc.key, dump(a.Patch))
			}
			at, _ := contract.ParseTime(*v)
			if at.Before(now) {
				t.Errorf("%s reset to %s, before now: a wait would be shortened", tc.key, *v)
			}
		})
	}
}

func TestAbortDuringTheReboot(t *testing.T) {
	// The detector committed the reboot (rebooting = the current boot),
	// then somebody removed the state.
	n := node(cordoned, ann(contract.AnnotationCordonedByUs, "true"), ann(contract.AnnotationRebooting, "boot-1"),
		ann(contract.AnnotationRebootAuthorized, "boot-1"))
	slot := &Slot{Since: ago(5 * time.Minute)}
	in := Input{Node: n, Config: &cfg0, Now: now, Slot: slot}
	if a := Node(in); a.Kind != Wait || a.Patch != nil || !a.Until.Equal(slot.Since.Add(cfg0.DrainTimeout+cfg0.RebootTimeout)) {
		t.Fatalf("got %v, want the node held (cordoned, counted) until the reboot deadline", a)
	}
	if !KeepsSlot(in) {
		t.Fatal("the node gives its slot back while its reboot is under way")
	}
	// Back with a new boot: given back.
	in.Node = node(cordoned, ann(contract.AnnotationCordonedByUs, "true"), ann(contract.AnnotationRebooting, "boot-1"), boot("boot-2"))
	if a := Node(in); a.Kind != Release || a.Patch.Unschedulable == nil || *a.Patch.Unschedulable {
		t.Fatalf("after the reboot got %v, want a Release that uncordons", a)
	}
	// Never back: given back after the deadline.
	in.Node, in.Now = n, slot.Since.Add(cfg0.DrainTimeout+cfg0.RebootTimeout)
	if a := Node(in); a.Kind != Release {
		t.Fatalf("after the deadline got %v, want a Release", a)
	}
}

func TestNoBootIDIsNeverQueued(t *testing.T) {
	a := Node(Input{Node: node(required(ago(time.Hour)), boot("")), Config: &cfg0, Now: now})
	if a.Kind != Wait || a.Reason != contract.ReasonRebootBlocked {
		t.Fatalf("got %v, want a RebootBlocked wait", a)
	}
}

func TestRebootedWithoutAuthorizationIsNotRebootedAgain(t *testing.T) {
	n := node(state(contract.StateRebooted, ago(time.Minute)), boot("boot-2"),
		ann(contract.AnnotationStateReason, contract.AuthorizedReason("boot-1")))
	a := Node(held(Input{Node: n, Config: &cfg0, Now: now}))
	if a.Kind != Reset || a.Patch.Annotations[contract.AnnotationState] != nil {
		t.Fatalf("got %v, want the authorization restored without a new drain", a)
	}
	if v := a.Patch.Annotations[contract.AnnotationRebootAuthorized]; v == nil || *v != "boot-1" {
		t.Fatalf("reboot-authorized restored to %v, want boot-1", v)
	}
}

func TestAdmitOneControlPlaneNodeAtATime(t *testing.T) {
	c := cfg0
	c.MaxConcurrent, c.MaxConcurrentControlPlane = 3, 1
	cands := []Candidate{
		{Name: "cp-1", RequestTime: ago(3 * time.Hour), ControlPlane: true},
		{Name: "cp-2", RequestTime: ago(2 * time.Hour), ControlPlane: true},
		{Name: "w-1", RequestTime: ago(time.Hour)},
	}
	ad := Admit(cands, Cluster{}, &c, now)
	if strings.Join(ad.Take, ",") != "cp-1,w-1" {
		t.Fatalf("took %v, want cp-1 and w-1 (one control-plane node)", ad.Take)
	}
	ad = Admit(cands[1:], Cluster{Out: 1, OutControlPlane: 1}, &c, now)
	if strings.Join(ad.Take, ",") != "w-1" {
		t.Fatalf("with a control-plane node out took %v, want only w-1", ad.Take)
	}
	c.MaxConcurrentControlPlane = 0
	if ad = Admit(cands, Cluster{}, &c, now); strings.Join(ad.Take, ",") != "w-1" {
		t.Fatalf("with --max-concurrent-control-plane=0 took %v", ad.Take)
	}
}

func TestAdmitWaitsForOthersCordons(t *testing.T) {
	c := cfg0
	cands := []Candidate{{Name: "n1", RequestTime: ago(time.Hour)}}
	cl := Cluster{CordonedByOthers: []string{"aks-nodepool1-2"}, PoolsInUpgrade: []string{"nodepool1"}}
	if ad := Admit(cands, cl, &c, now); len(ad.Take) != 1 {
		t.Fatalf("--cordoned-by-others=reboot took %v, want n1", ad.Take)
	}
	c.WaitForOthersCordons = true
	ad := Admit(cands, cl, &c, now)
	if len(ad.Take) != 0 || !ad.Blocked() || ad.Blocks[0].Reason != BlockedCordoned || !strings.Contains(ad.BlockedMessage(), "aks-nodepool1-2") {
		t.Fatalf("with wait: %+v, want nothing taken, blocked naming the node", ad)
	}
	c.WaitForOthersCordons, c.PoolLabel, c.PoolVersionLabel = false, "kubernetes.azure.com/agentpool", "kubernetes.azure.com/node-image-version"
	ad = Admit(cands, cl, &c, now)
	if len(ad.Take) != 0 || !strings.Contains(ad.BlockedMessage(), "nodepool1") {
		t.Fatalf("with a pool in upgrade: %+v, want nothing taken, blocked naming the pool", ad)
	}
}
