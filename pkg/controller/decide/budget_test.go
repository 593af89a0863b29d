package decide

import (
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// zoned is a node in a zone ("": no zone label) with more labels (k=v).
func zoned(name, zone string, kv ...string) *v1.Node {
	n := node()
	n.Name = name
	if zone != "" {
		n.Labels[DefaultTopologyKey] = zone
	}
	for _, l := range kv {
		k, v, _ := strings.Cut(l, "=")
		n.Labels[k] = v
	}
	return n
}

func TestAdmitBudgets(t *testing.T) {
	gpu := PoolBudget{Name: "gpu", Selector: labels.SelectorFromSet(labels.Set{"pool": "gpu"}), MaxConcurrent: 1}
	spot := PoolBudget{Name: "spot", Selector: labels.SelectorFromSet(labels.Set{"spot": "true"}), MaxConcurrent: 2}
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
		out  []*v1.Node
		// cands wait in this order (the first is the oldest request).
		cands     []*v1.Node
		wantTake  []string
		wantBlock map[string]string
	}{{
		name:     "no budgets: the global cap alone",
		cfg:      func(c *Config) { c.MaxConcurrent = 3 },
		cands:    []*v1.Node{zoned("a1", "a"), zoned("a2", "a"), zoned("a3", "a")},
		wantTake: []string{"a1", "a2", "a3"},
	}, {
		name:      "per domain: one per zone, the next zone goes",
		cfg:       func(c *Config) { c.MaxConcurrent, c.MaxConcurrentPerDomain = 3, 1 },
		cands:     []*v1.Node{zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")},
		wantTake:  []string{"a1", "b1"},
		wantBlock: map[string]string{"a2": BlockedDomainBudget},
	}, {
		name:      "per domain: counts the nodes out",
		cfg:       func(c *Config) { c.MaxConcurrent, c.MaxConcurrentPerDomain = 5, 2 },
		out:       []*v1.Node{zoned("a0", "a"), zoned("a9", "a"), zoned("b0", "b")},
		cands:     []*v1.Node{zoned("a1", "a"), zoned("b1", "b"), zoned("b2", "b")},
		wantTake:  []string{"b1"},
		wantBlock: map[string]string{"a1": BlockedDomainBudget, "b2": BlockedDomainBudget},
	}, {
		name:      "per domain: nodes without the label are a domain of their own",
		cfg:       func(c *Config) { c.MaxConcurrent, c.MaxConcurrentPerDomain = 5, 1 },
		out:       []*v1.Node{zoned("x0", "")},
		cands:     []*v1.Node{zoned("x1", ""), zoned("a1", "a")},
		wantTake:  []string{"a1"},
		wantBlock: map[string]string{"x1": BlockedDomainBudget},
	}, {
		name: "per domain: another topology key",
		cfg: func(c *Config) {
			c.MaxConcurrent, c.MaxConcurrentPerDomain, c.TopologyKey = 5, 1, "rack"
		},
		cands:     []*v1.Node{zoned("r1", "a", "rack=1"), zoned("r2", "b", "rack=1"), zoned("r3", "a", "rack=2")},
		wantTake:  []string{"r1", "r3"},
		wantBlock: map[string]string{"r2": BlockedDomainBudget},
	}, {
		name:      "one domain at a time: the oldest request's domain, then only it",
		cfg:       func(c *Config) { c.MaxConcurrent, c.OneDomainAtATime = 5, true },
		cands:     []*v1.Node{zoned("b1", "b"), zoned("a1", "a"), zoned("b2", "b")},
		wantTake:  []string{"b1", "b2"},
		wantBlock: map[string]string{"a1": BlockedDomainBudget},
	}, {
		name:      "one domain at a time: the domain with nodes out is finished first",
		cfg:       func(c *Config) { c.MaxConcurrent, c.OneDomainAtATime = 5, true },
		out:       []*v1.Node{zoned("c0", "c")},
		cands:     []*v1.Node{zoned("a1", "a"), zoned("c1", "c")},
		wantTake:  []string{"c1"},
		wantBlock: map[string]string{"a1": BlockedDomainBudget},
	}, {
		name:      "one domain at a time: two domains out (an earlier configuration), none is added to",
		cfg:       func(c *Config) { c.MaxConcurrent, c.OneDomainAtATime = 5, true },
		out:       []*v1.Node{zoned("a0", "a"), zoned("b0", "b")},
		cands:     []*v1.Node{zoned("a1", "a"), zoned("b1", "b"), zoned("c1", "c")},
		wantBlock: map[string]string{"a1": BlockedDomainBudget, "b1": BlockedDomainBudget, "c1": BlockedDomainBudget},
	}, {
		name: "one domain at a time with a cap per domain",
		cfg: func(c *Config) {
			c.MaxConcurrent, c.OneDomainAtATime, c.MaxConcurrentPerDomain = 5, true, 2
		},
		out:       []*v1.Node{zoned("a0", "a")},
		cands:     []*v1.Node{zoned("a1", "a"), zoned("b1", "b"), zoned("a2", "a")},
		wantTake:  []string{"a1"},
		wantBlock: map[string]string{"b1": BlockedDomainBudget, "a2": BlockedDomainBudget},
	}, {
		name:      "pools: each on its own",
		cfg:       func(c *Config) { c.MaxConcurrent, c.PoolBudgets = 5, []PoolBudget{gpu, spot} },
		out:       []*v1.Node{zoned("s0", "a", "spot=true")},
		cands:     []*v1.Node{zoned("g1", "a", "pool=gpu"), zoned("g2", "a", "pool=gpu"), zoned("s1", "a", "spot=true"), zoned("s2", "a", "spot=true"), zoned("w1", "a")},
		wantTake:  []string{"g1", "s1", "w1"},
		wantBlock: map[string]string{"g2": BlockedPoolBudget, "s2": BlockedPoolBudget},
	}, {
		name:      "pools: a node in two pools counts in both",
		cfg:       func(c *Config) { c.MaxConcurrent, c.PoolBudgets = 5, []PoolBudget{gpu, spot} },
		out:       []*v1.Node{zoned("gs0", "a", "pool=gpu", "spot=true")},
		cands:     []*v1.Node{zoned("s1", "a", "spot=true"), zoned("g1", "a", "pool=gpu"), zoned("s2", "a", "spot=true")},
		wantTake:  []string{"s1"},
		wantBlock: map[string]string{"g1": BlockedPoolBudget, "s2": BlockedPoolBudget},
	}, {
		name:      "pools: all together under the global cap",
		cfg:       func(c *Config) { c.MaxConcurrent, c.PoolBudgets = 2, []PoolBudget{gpu, spot} },
		cands:     []*v1.Node{zoned("g1", "a", "pool=gpu"), zoned("s1", "a", "spot=true"), zoned("s2", "a", "spot=true")},
		wantTake:  []string{"g1", "s1"},
		wantBlock: map[string]string{},
	}, {
		name: "pools: a cap of 0 never takes the pool's nodes",
		cfg: func(c *Config) {
			g := gpu
			g.MaxConcurrent = 0
			c.MaxConcurrent, c.PoolBudgets = 2, []PoolBudget{g}
		},
		cands:     []*v1.Node{zoned("g1", "a", "pool=gpu"), zoned("w1", "a")},
		wantTake:  []string{"w1"},
		wantBlock: map[string]string{"g1": BlockedPoolBudget},
	}, {
		name: "control plane, domain and pool budgets together",
		cfg: func(c *Config) {
			c.MaxConcurrent, c.MaxConcurrentControlPlane, c.MaxConcurrentPerDomain, c.PoolBudgets = 4, 1, 2, []PoolBudget{gpu}
		},
		out: []*v1.Node{zoned("cp0", "a", "node-role.kubernetes.io/control-plane=")},
		cands: []*v1.Node{zoned("cp1", "b", "node-role.kubernetes.io/control-plane="), zoned("g1", "a", "pool=gpu"),
			zoned("a1", "a"), zoned("g2", "b", "pool=gpu"), zoned("b1", "b")},
		wantTake:  []string{"g1", "b1"},
		wantBlock: map[string]string{"a1": BlockedDomainBudget, "g2": BlockedPoolBudget},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg0
			c.TopologyKey = DefaultTopologyKey
			tc.cfg(&c)
			var cl Cluster
			for _, n := range tc.out {
				cl.AddOut(n, &c)
			}
			var cands []Candidate
			for i, n := range tc.cands {
				cands = append(cands, NewCandidate(n, ago(time.Duration(len(tc.cands)-i)*time.Minute), &c))
			}
			ad := Admit(cands, cl, &c, now)
			if !reflect.DeepEqual(ad.Take, tc.wantTake) {
				t.Errorf("took %v, want %v", ad.Take, tc.wantTake)
			}
			got := map[string]string{}
			for name, b := range ad.NodeBlocks {
				got[name] = b.Reason
				if b.Message == "" {
					t.Errorf("%s: a block without a message", name)
				}
			}
			if len(got) > 0 || len(tc.wantBlock) > 0 {
				if !reflect.DeepEqual(got, tc.wantBlock) {
					t.Errorf("blocks %v, want %v (%+v)", got, tc.wantBlock, ad.NodeBlocks)
				}
			}
			if len(ad.Take)+len(ad.Waiting) != len(cands) {
				t.Errorf("take %v + waiting %v != %d candidates", ad.Take, ad.Waiting, len(cands))
			}
		})
	}
}

// TestBudgetMessages: a block names the budget, the domain or pool, and the
// flag to change.
func TestBudgetMessages(t *testing.T) {
	c := cfg0
	c.MaxConcurrent, c.TopologyKey, c.OneDomainAtATime, c.MaxConcurrentPerDomain = 5, DefaultTopologyKey, true, 1
	c.PoolBudgets = []PoolBudget{{Name: "gpu", Selector: labels.SelectorFromSet(labels.Set{"pool": "gpu"}), MaxConcurrent: 1}}
	var cl Cluster
	cl.AddOut(zoned("a0", "a", "pool=gpu"), &c)
	cands := []Candidate{
		NewCandidate(zoned("a1", "a"), ago(3*time.Minute), &c),
		NewCandidate(zoned("b1", "b"), ago(2*time.Minute), &c),
		NewCandidate(zoned("g1", "", "pool=gpu"), ago(time.Minute), &c),
	}
	ad := Admit(cands, cl, &c, now)
	for name, want := range map[string][]string{
		"a1": {`topology.kubernetes.io/zone="a" has 1 nodes out`, "--max-concurrent-per-domain 1"},
		"b1": {`nodes of topology.kubernetes.io/zone="a" are out`, `domain topology.kubernetes.io/zone="b" waits`, "--one-domain-at-a-time"},
		"g1": {`nodes of topology.kubernetes.io/zone="a" are out`},
	} {
		for _, w := range want {
			if msg := ad.NodeBlocks[name].Message; !strings.Contains(msg, w) {
				t.Errorf("%s: block %q does not say %q", name, msg, w)
			}
		}
	}
	c.OneDomainAtATime, c.MaxConcurrentPerDomain = false, 0
	ad = Admit(cands[2:], cl, &c, now)
	if msg := ad.NodeBlocks["g1"].Message; !strings.Contains(msg, "pool gpu (pool=gpu) has 1 of its 1 nodes out (--pool-budget)") {
		t.Errorf("pool block %q", msg)
	}
}
