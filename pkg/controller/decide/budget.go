package decide

// The budgets below the global --max-concurrent: control-plane nodes, nodes
// per topology domain (one domain at a time if asked), and nodes per pool.
// Each counts the nodes out exactly as Cluster.Out does (AddOut).

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// DefaultTopologyKey is the default label naming a node's topology domain
// (--topology-key).
const DefaultTopologyKey = "topology.kubernetes.io/zone"

// Reasons for which a budget below --max-concurrent holds a node back
// (label values of nodereboot_reboot_blocked).
const (
	// BlockedDomainBudget: the node's topology domain has
	// --max-concurrent-per-domain nodes out, or another domain has nodes
	// out (--one-domain-at-a-time).
	BlockedDomainBudget = "DomainBudget"
	// BlockedPoolBudget: a pool the node belongs to has its
	// --pool-budget's nodes out.
	BlockedPoolBudget = "PoolBudget"
)

// PoolBudget caps the nodes out among the nodes a selector matches
// (--pool-budget). A node in several pools counts in each.
type PoolBudget struct {
	// Name names the pool in messages.
	Name string
	// Selector selects the pool's nodes.
	Selector labels.Selector
	// MaxConcurrent is the most of its nodes out at any moment; 0: never
	// take them.
	MaxConcurrent int
}

// DomainBudgets reports whether admission looks at topology domains at all
// (a per-domain cap or one domain at a time).
func (cfg *Config) DomainBudgets() bool {
	return cfg.MaxConcurrentPerDomain > 0 || cfg.OneDomainAtATime
}

// DomainOf is the node's topology domain: the value of its
// Config.TopologyKey label; "" (a domain of its own) when it has none.
func DomainOf(n *v1.Node, cfg *Config) string {
	return n.Labels[cfg.TopologyKey]
}

// PoolsOf names the pool budgets whose selector matches the node, in the
// order they were configured.
func PoolsOf(n *v1.Node, cfg *Config) []string {
	var pools []string
	for _, p := range cfg.PoolBudgets {
		if p.Selector != nil && p.Selector.Matches(labels.Set(n.Labels)) {
			pools = append(pools, p.Name)
		}
	}
	return pools
}

// NewCandidate describes a node waiting for a slot, its reboot requested
// at requested.
func NewCandidate(n *v1.Node, requested time.Time, cfg *Config) Candidate {
	return Candidate{Name: n.Name, RequestTime: requested, ControlPlane: IsControlPlane(n),
		Domain: DomainOf(n, cfg), Pools: PoolsOf(n, cfg)}
}

// AddOut counts a node that is out: in Out, and in every budget it falls
// under (control plane, its domain, its pools).
func (cl *Cluster) AddOut(n *v1.Node, cfg *Config) {
	cl.Out++
	if IsControlPlane(n) {
		cl.OutControlPlane++
	}
	if cl.OutByDomain == nil {
		cl.OutByDomain = map[string]int{}
	}
	cl.OutByDomain[DomainOf(n, cfg)]++
	for _, p := range PoolsOf(n, cfg) {
		if cl.OutByPool == nil {
			cl.OutByPool = map[string]int{}
		}
		cl.OutByPool[p]++
	}
}

// budgets is what is left of the budgets below --max-concurrent during one
// admission pass: it starts from the cluster's counts and counts each take.
type budgets struct {
	cfg      *Config
	cpOut    int
	byDomain map[string]int
	byPool   map[string]int
}

func newBudgets(cl Cluster, cfg *Config) *budgets {
	b := &budgets{cfg: cfg, cpOut: cl.OutControlPlane, byDomain: map[string]int{}, byPool: map[string]int{}}
	for d, n := range cl.OutByDomain {
		if n > 0 {
			b.byDomain[d] = n
		}
	}
	for p, n := range cl.OutByPool {
		b.byPool[p] = n
	}
	return b
}

// check says whether c fits every budget: ok, or held back by the
// control-plane budget (a plain wait, no block), or by a domain or pool
// budget (the block says which).
func (b *budgets) check(c Candidate) (ok bool, block *Block) {
	if c.ControlPlane && b.cpOut >= b.cfg.MaxConcurrentControlPlane {
		return false, nil
	}
	if msg := b.domainBlock(c); msg != "" {
		return false, &Block{Reason: BlockedDomainBudget, Message: msg}
	}
	for _, name := range c.Pools {
		i := slices.IndexFunc(b.cfg.PoolBudgets, func(p PoolBudget) bool { return p.Name == name })
		if i < 0 {
			continue
		}
		if p := b.cfg.PoolBudgets[i]; b.byPool[name] >= p.MaxConcurrent {
			return false, &Block{Reason: BlockedPoolBudget, Message: fmt.Sprintf(
				"pool %s (%s) has %d of its %d nodes out (--pool-budget)", name, p.Selector, b.byPool[name], p.MaxConcurrent)}
		}
	}
	return true, nil
}

// domainBlock explains why c's domain may not have another node out ("":
// it may).
func (b *budgets) domainBlock(c Candidate) string {
	if !b.cfg.DomainBudgets() {
		return ""
	}
	key := b.cfg.TopologyKey
	if b.cfg.OneDomainAtATime {
		var others []string
		for d := range b.byDomain {
			if d != c.Domain {
				others = append(others, fmt.Sprintf("%s=%q", key, d))
			}
		}
		if len(others) > 0 {
			sort.Strings(others)
			return fmt.Sprintf("nodes of %s are out; the node's domain %s=%q waits until they are back (--one-domain-at-a-time)",
				strings.Join(others, ", "), key, c.Domain)
		}
	}
	if limit := b.cfg.MaxConcurrentPerDomain; limit > 0 && b.byDomain[c.Domain] >= limit {
		return fmt.Sprintf("the node's domain %s=%q has %d nodes out (--max-concurrent-per-domain %d)", key, c.Domain, b.byDomain[c.Domain], limit)
	}
	return ""
}

// take counts c as out.
func (b *budgets) take(c Candidate) {
	if c.ControlPlane {
		b.cpOut++
	}
	b.byDomain[c.Domain]++
	for _, p := range c.Pools {
		b.byPool[p]++
	}
}
