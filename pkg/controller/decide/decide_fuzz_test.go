package decide

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// fuzzNodeBytes is how many input bytes describe one node.
const fuzzNodeBytes = 10

// fuzzNode builds a node, valid or not, from b (fuzzNodeBytes long).
func fuzzNode(i int, b []byte, now time.Time) (*v1.Node, *DrainStatus) {
	const current, other = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%d", i), ResourceVersion: "1",
		Labels: map[string]string{}, Annotations: map[string]string{}}}
	ann := n.Annotations
	states := []string{"", "Draining", "Authorized", "Rebooted", "Failed", "Rebooting", "", "draining"}
	if s := b[0] % 8; s != 0 {
		ann[contract.AnnotationState] = states[s]
	}
	f := b[1]
	n.Spec.Unschedulable = f&1 != 0
	if f&2 != 0 {
		ann[contract.AnnotationCordonedByUs] = "true"
	}
	ready := v1.ConditionFalse
	if f&4 != 0 {
		ready = v1.ConditionTrue
	}
	ago := time.Duration(b[4]) * time.Minute
	n.Status.Conditions = append(n.Status.Conditions, v1.NodeCondition{Type: v1.NodeReady, Status: ready,
		LastTransitionTime: metav1.NewTime(now.Add(-time.Duration(b[8]) * time.Minute))})
	if f&8 != 0 {
		n.Status.Conditions = append(n.Status.Conditions, v1.NodeCondition{Type: contract.DefaultConditionType, Status: v1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now.Add(-time.Duration(b[8]) * time.Minute)),
			LastHeartbeatTime:  metav1.NewTime(now.Add(-time.Duration(b[9]%64) * time.Minute))})
	}
	if f&16 != 0 {
		ann[contract.AnnotationRebootRequested] = "yes"
	}
	if f&32 != 0 {
		n.Labels[contract.LabelDisabled] = "true"
	}
	if f&64 != 0 {
		n.Status.NodeInfo.BootID = current
	}
	switch b[2] % 5 {
	case 1:
		ann[contract.AnnotationRebootAuthorized] = current
	case 2:
		ann[contract.AnnotationRebootAuthorized] = other
	case 3:
		ann[contract.AnnotationRebootAuthorized] = "yes"
	case 4:
		ann[contract.AnnotationRebootAuthorized] = ""
	}
	switch b[3] % 4 {
	case 1:
		ann[contract.AnnotationStateSince] = contract.FormatTime(now.Add(-ago))
	case 2:
		ann[contract.AnnotationStateSince] = "yesterday"
	case 3:
		ann[contract.AnnotationStateSince] = contract.FormatTime(now.Add(ago))
	}
	switch b[6] % 6 {
	case 1:
		ann[contract.AnnotationLastReboot] = contract.FormatTime(now.Add(-ago))
	case 2:
		ann[contract.AnnotationLastReboot] = "last tuesday"
	case 3:
		ann[contract.AnnotationNotBefore] = contract.FormatTime(now.Add(ago))
	case 4:
		ann[contract.AnnotationNotBefore] = "2026-13-45T99:00:00Z"
	}
	switch b[7] % 4 {
	case 1:
		ann[contract.AnnotationStateReason] = "authorized boot ID " + current
	case 2:
		ann[contract.AnnotationStateReason] = "authorized boot ID " + other
	case 3:
		ann[contract.AnnotationStateReason] = contract.ReasonRebootTimeout
	}
	if b[9]&64 != 0 {
		ann[contract.AnnotationRebooting] = current
	}
	// b[5]'s upper bits: the zone (none, z1, z2, z3), the pools and the
	// control-plane role.
	if z := b[5] >> 3 % 4; z != 0 {
		n.Labels[DefaultTopologyKey] = fmt.Sprintf("z%d", z)
	}
	if b[5]&32 != 0 {
		n.Labels["pool"] = "a"
	}
	if b[5]&64 != 0 {
		n.Labels["spot"] = "true"
	}
	if b[5]&128 != 0 {
		n.Labels[ControlPlaneLabels[0]] = ""
	}
	var d *DrainStatus
	if f&128 != 0 {
		d = &DrainStatus{Pending: int(b[5] % 4)}
		if d.Pending > 0 && b[5]&4 != 0 {
			d.Pods = []string{"demo/web-1 (PDB demo/web)"}
			d.RetryAt = now.Add(time.Second)
		}
	}
	return n, d
}

// FuzzDecide asserts the controller's safety rules on random node sets,
// valid or garbage: admission never takes more than any applicable budget
// allows (--max-concurrent, the control-plane budget, the per-domain cap,
// one domain at a time, each pool budget) given the nodes out, and nothing
// while blocked; no reboot is authorized without
// a finished drain (or the drain timeout with --on-drain-failure=reboot);
// nothing uncordons a node without cordoned-by-us; only a new, Ready boot
// completes a reboot.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{1, 0xc6, 0, 1, 5, 0, 0, 0, 10, 0}, uint8(1), uint8(0), uint16(0), uint16(0))
	f.Add([]byte{2, 0x47, 2, 1, 5, 0, 0, 1, 10, 0, 0, 0x5c, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(2), uint8(2), uint16(10), uint16(0x125))
	f.Add([]byte{5, 0x03, 1, 2, 5, 0, 2, 0, 10, 64, 1, 0xc6, 0, 1, 200, 3, 4, 0, 3, 0}, uint8(1), uint8(1), uint16(100), uint16(0x2e))
	f.Add([]byte{3, 0x46, 2, 1, 1, 0, 0, 2, 90, 0, 0, 0x4c, 0, 0, 0, 0, 1, 0, 120, 3}, uint8(3), uint8(0), uint16(7), uint16(0x165))
	f.Add([]byte{0, 0x5c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x48, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x58, 0, 0, 0, 0, 3, 0, 0, 0}, uint8(1), uint8(0), uint16(0), uint16(0))
	f.Add([]byte{0, 0x5c, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0x5c, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x5c, 0, 0, 0, 0x68, 0, 0, 0, 0, 1, 0xc6, 0, 1, 5, 0x08, 0, 0, 10, 0}, uint8(3), uint8(0), uint16(0), uint16(0x365))
	f.Fuzz(func(t *testing.T, data []byte, maxConcurrent, policy uint8, nowSec, budgets uint16) {
		now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC).Add(time.Duration(nowSec) * time.Second)
		cfg := &Config{
			Conditions:          []string{contract.DefaultConditionType},
			ConditionMinAge:     time.Duration(policy>>4) * time.Minute,
			MaxConcurrent:       int(maxConcurrent%4) + 1,
			DrainTimeout:        10 * time.Minute,
			OnDrainFailure:      []DrainFailurePolicy{DrainFailureUncordon, DrainFailureHold, DrainFailureReboot}[int(policy)%3],
			DrainFailureBackoff: 30 * time.Minute,
			RebootTimeout:       30 * time.Minute,
			PostRebootSoak:      time.Duration(policy>>6) * time.Minute,
			MinRebootInterval:   time.Hour,
		}
		fuzzBudgets(cfg, budgets)
		nodes := map[string]*v1.Node{}
		var cands []Candidate
		var cl Cluster
		for i := 0; (i+1)*fuzzNodeBytes <= len(data) && i < 16; i++ {
			n, drain := fuzzNode(i, data[i*fuzzNodeBytes:(i+1)*fuzzNodeBytes], now)
			in := Input{Node: n, Config: cfg, Now: now, Drain: drain}
			if (len(data)+i)%3 != 0 {
				// Most nodes were taken by the controller; the
				// others carry what somebody else wrote.
				in = held(in)
			}
			a := Node(in)
			checkAction(t, in, a)
			nodes[n.Name] = n
			if in.Slot != nil || Marked(n) {
				cl.AddOut(n, cfg)
			} else if Selected(n, cfg) && !IsReady(n) {
				cl.NotReady = append(cl.NotReady, n.Name)
			}
			if a.Kind == Queue {
				if _, out := n.Annotations[contract.AnnotationState]; out {
					t.Fatalf("node %s with a state queued: %v", n.Name, a)
				}
				cands = append(cands, NewCandidate(n, a.RequestTime, cfg))
			}
		}
		ad := Admit(cands, cl, cfg, now)
		checkBudgets(t, cfg, cl, nodes, ad)
		if ad.Blocked() && len(ad.Take) > 0 {
			t.Fatalf("took nodes while blocked: %+v", ad)
		}
		if len(cl.NotReady) > 0 && len(cands) > 0 && len(ad.Take) > 0 {
			t.Fatalf("took nodes while %v are NotReady: %+v", cl.NotReady, ad)
		}
		seen := map[string]int{}
		for _, n := range append(append([]string(nil), ad.Take...), ad.Waiting...) {
			seen[n]++
		}
		if len(seen) != len(cands) || len(ad.Take)+len(ad.Waiting) != len(cands) {
			t.Fatalf("admission of %v: take %v, waiting %v", cands, ad.Take, ad.Waiting)
		}
	})
}

// fuzzBudgets sets the budgets below --max-concurrent from b: the cap per
// zone (0-3), one zone at a time, the control-plane budget (0-2), and two
// pools (pool=a, spot=true) with caps of 0-2.
func fuzzBudgets(cfg *Config, b uint16) {
	cfg.TopologyKey = DefaultTopologyKey
	cfg.MaxConcurrentPerDomain = int(b % 4)
	cfg.OneDomainAtATime = b&4 != 0
	cfg.MaxConcurrentControlPlane = int(b>>3) % 3
	if b&32 != 0 {
		cfg.PoolBudgets = append(cfg.PoolBudgets, PoolBudget{Name: "a",
			Selector: labels.SelectorFromSet(labels.Set{"pool": "a"}), MaxConcurrent: int(b>>6) % 3})
	}
	if b&256 != 0 {
		cfg.PoolBudgets = append(cfg.PoolBudgets, PoolBudget{Name: "spot",
			Selector: labels.SelectorFromSet(labels.Set{"spot": "true"}), MaxConcurrent: int(b>>9) % 3})
	}
}

// checkBudgets asserts that the nodes taken fit every budget that applies
// to them, counted from the nodes out: none beyond a budget's room, and,
// one domain at a time, all in the one domain that may have nodes out.
func checkBudgets(t *testing.T, cfg *Config, cl Cluster, nodes map[string]*v1.Node, ad Admission) {
	t.Helper()
	if room := max(cfg.MaxConcurrent-cl.Out, 0); len(ad.Take) > room {
		t.Fatalf("took %d nodes with %d out of --max-concurrent %d: %+v", len(ad.Take), cl.Out, cfg.MaxConcurrent, ad)
	}
	cp, byDomain, byPool := 0, map[string]int{}, map[string]int{}
	for _, name := range ad.Take {
		n := nodes[name]
		if IsControlPlane(n) {
			cp++
		}
		byDomain[DomainOf(n, cfg)]++
		for _, p := range PoolsOf(n, cfg) {
			byPool[p]++
		}
	}
	if room := max(cfg.MaxConcurrentControlPlane-cl.OutControlPlane, 0); cp > room {
		t.Fatalf("took %d control-plane nodes with %d out of %d: %v", cp, cl.OutControlPlane, cfg.MaxConcurrentControlPlane, ad.Take)
	}
	for d, k := range byDomain {
		if m := cfg.MaxConcurrentPerDomain; m > 0 && k > max(m-cl.OutByDomain[d], 0) {
			t.Fatalf("took %d nodes of domain %q with %d out of --max-concurrent-per-domain %d: %v", k, d, cl.OutByDomain[d], m, ad.Take)
		}
	}
	for _, p := range cfg.PoolBudgets {
		if k := byPool[p.Name]; k > max(p.MaxConcurrent-cl.OutByPool[p.Name], 0) {
			t.Fatalf("took %d nodes of pool %s with %d out of %d: %v", k, p.Name, cl.OutByPool[p.Name], p.MaxConcurrent, ad.Take)
		}
	}
	if cfg.OneDomainAtATime && len(ad.Take) > 0 {
		domains := map[string]bool{}
		for d, k := range cl.OutByDomain {
			if k > 0 {
				domains[d] = true
			}
		}
		for d := range byDomain {
			domains[d] = true
		}
		if len(domains) > 1 {
			t.Fatalf("one domain at a time: took %v with %v out, in domains %v", ad.Take, cl.OutByDomain, domains)
		}
	}
}

// checkAction asserts the rules every single decision keeps.
func checkAction(t *testing.T, in Input, a Action) {
	t.Helper()
	n := in.Node
	state, hasState := n.Annotations[contract.AnnotationState]
	boot := n.Status.NodeInfo.BootID
	authz, hasAuthz := n.Annotations[contract.AnnotationRebootAuthorized]
	_, ours := n.Annotations[contract.AnnotationCordonedByUs]
	if a.Patch != nil {
		if a.Patch.Unschedulable != nil && !*a.Patch.Unschedulable && !ours {
			t.Fatalf("%s: uncordons a node without %s: %v", n.Name, contract.AnnotationCordonedByUs, a)
		}
		if v := a.Patch.Annotations[contract.AnnotationState]; v != nil {
			if st, err := contract.ParseState(*v); err != nil || st == contract.StateIdle {
				t.Fatalf("%s: writes state %q: %v", n.Name, *v, a)
			}
		}
		if v := a.Patch.Annotations[contract.AnnotationRebootAuthorized]; v != nil {
			switch {
			case a.Kind == Authorize:
			case a.Kind == Reset && state == string(contract.StateAuthorized):
				// Restores the boot ID Authorize recorded; the node is
				// past a finished drain.
			case a.Kind == Reset && state == string(contract.StateRebooted) && *v != boot:
				// Restores the authorization of the boot that is over:
				// it can never reboot the node again.
			default:
				t.Fatalf("%s (state %q): %v writes %s=%q", n.Name, state, a, contract.AnnotationRebootAuthorized, *v)
			}
			if *v == "" {
				t.Fatalf("%s: an empty authorization: %v", n.Name, a)
			}
		}
	}
	if in.Slot == nil {
		// Not put out by the controller: whatever the node carries, it
		// is never advanced, and its cordon is never touched.
		switch a.Kind {
		case Nothing, Wait, Queue, Reset, Unprotect, Release:
		default:
			t.Fatalf("%s holds no slot but %v", n.Name, a)
		}
		if a.Patch != nil && a.Patch.Unschedulable != nil {
			t.Fatalf("%s holds no slot but its cordon is changed: %v", n.Name, a)
		}
	}
	if a.Patch != nil {
		for k := range a.Patch.Labels {
			_, pre := in.Config.PreRebootLabels[k]
			_, post := in.Config.PostRebootLabels[k]
			if !pre && !post {
				t.Fatalf("%s: writes label %q it was not configured to write: %v", n.Name, k, a)
			}
		}
	}
	switch a.Kind {
	case Authorize:
		if state != string(contract.StateDraining) || in.Drain == nil {
			t.Fatalf("%s: authorized from state %q (present %v) without a drain pass: %v", n.Name, state, hasState, a)
		}
		if boot == "" || *a.Patch.Annotations[contract.AnnotationRebootAuthorized] != boot {
			t.Fatalf("%s: authorization %v of boot %q", n.Name, a, boot)
		}
		if in.Drain.Pending > 0 {
			since, err := contract.ParseTime(n.Annotations[contract.AnnotationStateSince])
			if in.Config.OnDrainFailure != DrainFailureReboot || err != nil || in.Now.Before(since.Add(in.Config.DrainTimeout)) {
				t.Fatalf("%s: authorized with %d pods left (policy %s): %v", n.Name, in.Drain.Pending, in.Config.OnDrainFailure, a)
			}
		}
	case MarkRebooted:
		if state != string(contract.StateAuthorized) || boot == "" || boot == authz || !hasAuthz || !IsReady(n) {
			t.Fatalf("%s: rebooted without a new Ready boot (state %q, boot %q, authorized %q): %v", n.Name, state, boot, authz, a)
		}
		if rec, ok := authorizedBoot(n); ok && rec != authz {
			t.Fatalf("%s: rebooted on a changed authorization %q (authorized %q): %v", n.Name, authz, rec, a)
		}
	case Finish:
		if state != string(contract.StateRebooted) || !IsReady(n) {
			t.Fatalf("%s: finished from state %q: %v", n.Name, state, a)
		}
	case Queue:
		if hasState {
			t.Fatalf("%s: queued with state %q", n.Name, state)
		}
	}
}
