package options

// The budgets below --max-concurrent: per topology domain and per pool.

import (
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nodereboot/nodereboot/pkg/cli"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// budgetOptions are the flags of the budgets per topology domain and per
// pool.
type budgetOptions struct {
	// TopologyKey is the node label naming a node's topology domain.
	TopologyKey string
	// MaxConcurrentPerDomain caps the nodes out per domain (0: no cap).
	MaxConcurrentPerDomain int
	// OneDomainAtATime takes nodes of one domain at a time.
	OneDomainAtATime bool
	// PoolBudgets are the --pool-budget values, NAME:MAX:SELECTOR.
	PoolBudgets []string
}

// defaultBudgetOptions are the budgets' defaults: none beyond the global
// cap.
func defaultBudgetOptions() budgetOptions {
	return budgetOptions{TopologyKey: decide.DefaultTopologyKey}
}

// addBudgetFlags binds the flags of the budgets per topology domain and per
// pool.
func (o *budgetOptions) addBudgetFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.TopologyKey, "topology-key", o.TopologyKey,
		"Node label whose value is a node's topology domain, for --max-concurrent-per-domain and --one-domain-at-a-time. Nodes without it form a domain of their own.")
	fs.IntVar(&o.MaxConcurrentPerDomain, "max-concurrent-per-domain", o.MaxConcurrentPerDomain,
		"Most nodes in the pipeline per topology domain (--topology-key) at any moment, within --max-concurrent; 0: no cap per domain.")
	fs.BoolVar(&o.OneDomainAtATime, "one-domain-at-a-time", o.OneDomainAtATime,
		"Take a node only while no node of another topology domain (--topology-key) is in the pipeline: a domain is finished before the next starts, the next being the domain of the oldest waiting request.")
	fs.StringArrayVar(&o.PoolBudgets, "pool-budget", o.PoolBudgets,
		"NAME:MAX:SELECTOR: at most MAX nodes matching the label SELECTOR in the pipeline at any moment, within --max-concurrent (repeatable, one pool each; a node in several pools counts in each). E.g. gpu:1:node.kubernetes.io/instance-type in (g5.xlarge,g5.2xlarge).")
}

// completeBudgets checks and converts the budgets per domain and per pool.
func (o *budgetOptions) completeBudgets(d *decide.Config, errs *cli.FlagErrors) {
	if msgs := validation.IsQualifiedName(o.TopologyKey); len(msgs) > 0 {
		errs.Add("topology-key", "invalid label key %q: %s", o.TopologyKey, strings.Join(msgs, "; "))
	}
	if o.MaxConcurrentPerDomain < 0 {
		errs.Add("max-concurrent-per-domain", "must be 0 (no cap) or more, got %d", o.MaxConcurrentPerDomain)
	}
	d.TopologyKey = o.TopologyKey
	d.MaxConcurrentPerDomain = o.MaxConcurrentPerDomain
	d.OneDomainAtATime = o.OneDomainAtATime
	seen := map[string]bool{}
	for _, v := range o.PoolBudgets {
		p, msg := parsePoolBudget(v)
		switch {
		case msg != "":
			errs.Add("pool-budget", "%q: %s", v, msg)
		case seen[p.Name]:
			errs.Add("pool-budget", "%q: pool %s given twice", v, p.Name)
		default:
			seen[p.Name] = true
			d.PoolBudgets = append(d.PoolBudgets, p)
		}
	}
}

// parsePoolBudget parses NAME:MAX:SELECTOR; the message says what is wrong
// ("": nothing). The selector is the rest after the second colon, so that
// its commas and parentheses need no quoting.
func parsePoolBudget(v string) (decide.PoolBudget, string) {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 {
		return decide.PoolBudget{}, "want NAME:MAX:SELECTOR"
	}
	name, maxs, sels := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1]), strings.TrimSpace(parts[2])
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return decide.PoolBudget{}, "invalid pool name: " + strings.Join(msgs, "; ")
	}
	limit, err := strconv.Atoi(maxs)
	if err != nil || limit < 0 {
		return decide.PoolBudget{}, "MAX must be a number of nodes, 0 or more, got " + strconv.Quote(maxs)
	}
	sel, err := labels.Parse(sels)
	switch {
	case err != nil:
		return decide.PoolBudget{}, "invalid selector: " + err.Error()
	case sel.Empty():
		return decide.PoolBudget{}, "an empty selector selects every node: use --max-concurrent"
	}
	return decide.PoolBudget{Name: name, Selector: sel, MaxConcurrent: limit}, ""
}
