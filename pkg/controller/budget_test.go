package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// The budgets below --max-concurrent on the fixture: the admission pass
// counts the nodes out per zone and pool as it counts them for
// --max-concurrent (a node marked by somebody else included), takes the
// nodes that fit, and announces the others' blocks.

// zoned is a node requesting a reboot since at, in a zone, with more
// labels.
func zoned(name, zone string, at time.Time, kv ...string) *v1.Node {
	n := requestedAt(name, at)
	n.Labels[decide.DefaultTopologyKey] = zone
	for i := 0; i+1 < len(kv); i += 2 {
		n.Labels[kv[i]] = kv[i+1]
	}
	return n
}

// A zone cap of one and a GPU pool of one: a node marked out by somebody
// else fills zone a, a GPU node taken fills the pool; the nodes that do
// not fit wait with a RebootBlocked naming the budget, and
// reboot_blocked{DomainBudget,PoolBudget} are set.
func TestDomainAndPoolBudgets(t *testing.T) {
	cfg := testConfig(4)
	cfg.Decide.TopologyKey, cfg.Decide.MaxConcurrentPerDomain = decide.DefaultTopologyKey, 1
	cfg.Decide.PoolBudgets = []decide.PoolBudget{{Name: "gpu", Selector: labels.SelectorFromSet(labels.Set{"pool": "gpu"}), MaxConcurrent: 1}}
	foreign := zoned("foreign", "a", fixtureNow.Add(-4*time.Hour))
	foreign.Annotations[contract.AnnotationState] = string(contract.StateDraining)
	// A slot record without it: the mark is somebody else's.
	f := newFixture(t, cfg, clocktesting.NewFakeClock(fixtureNow), slotRecord(1, fixtureNow.Add(-time.Hour)), foreign,
		zoned("a1", "a", fixtureNow.Add(-3*time.Hour)),
		zoned("b1", "b", fixtureNow.Add(-2*time.Hour), "pool", "gpu"),
		zoned("c1", "c", fixtureNow.Add(-time.Hour), "pool", "gpu"),
		zoned("c2", "c", fixtureNow.Add(-30*time.Minute)))
	f.admit()
	slot := "update configmaps " + contract.SlotsConfigMapName
	wantWrites(t, f.writes(), slot, "patch nodes b1", slot, "patch nodes c2")
	events := strings.Join(eventsOf(f.rec), "\n")
	for _, want := range []string{
		`Warning RebootBlocked the node's domain topology.kubernetes.io/zone="a" has 1 nodes out (--max-concurrent-per-domain 1)`,
		`Warning RebootBlocked pool gpu (pool=gpu) has 1 of its 1 nodes out (--pool-budget)`,
	} {
		if !strings.Contains(events, want) {
			t.Errorf("no event %q in\n%s", want, events)
		}
	}
	for _, r := range []string{decide.BlockedDomainBudget, decide.BlockedPoolBudget} {
		if v := testutil.ToFloat64(f.m.Blocked.WithLabelValues(r)); v != 1 {
			t.Errorf("reboot_blocked{%s} = %v", r, v)
		}
	}
}

// One domain at a time: with a node of zone a marked out by somebody
// else, only zone a's waiting node is taken, although zone b's request is
// older.
func TestOneDomainAtATime(t *testing.T) {
	cfg := testConfig(3)
	cfg.Decide.TopologyKey, cfg.Decide.OneDomainAtATime = decide.DefaultTopologyKey, true
	foreign := zoned("foreign", "a", fixtureNow.Add(-4*time.Hour))
	foreign.Annotations[contract.AnnotationState] = string(contract.StateDraining)
	f := newFixture(t, cfg, clocktesting.NewFakeClock(fixtureNow), slotRecord(1, fixtureNow.Add(-time.Hour)), foreign,
		zoned("b1", "b", fixtureNow.Add(-3*time.Hour)), zoned("a1", "a", fixtureNow.Add(-2*time.Hour)))
	f.admit()
	wantWrites(t, f.writes(), "update configmaps "+contract.SlotsConfigMapName, "patch nodes a1")
	events := strings.Join(eventsOf(f.rec), "\n")
	if want := `Warning RebootBlocked nodes of topology.kubernetes.io/zone="a" are out; the node's domain topology.kubernetes.io/zone="b" waits until they are back (--one-domain-at-a-time)`; !strings.Contains(events, want) {
		t.Errorf("no event %q in\n%s", want, events)
	}
	if v := testutil.ToFloat64(f.m.Blocked.WithLabelValues(decide.BlockedDomainBudget)); v != 1 {
		t.Errorf("reboot_blocked{%s} = %v", decide.BlockedDomainBudget, v)
	}
}
