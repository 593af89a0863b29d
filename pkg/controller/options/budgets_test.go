package options

import (
	"strings"
	"testing"

	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

func TestBudgetFlags(t *testing.T) {
	o, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Controller.Decide; d.TopologyKey != decide.DefaultTopologyKey || d.MaxConcurrentPerDomain != 0 || d.OneDomainAtATime || d.PoolBudgets != nil {
		t.Errorf("defaults: key %q, per domain %d, one at a time %v, pools %v", d.TopologyKey, d.MaxConcurrentPerDomain, d.OneDomainAtATime, d.PoolBudgets)
	}
	o, err = parse(t, nil, "--topology-key=example.com/rack", "--max-concurrent-per-domain=2", "--one-domain-at-a-time",
		"--pool-budget=gpu:1:node.kubernetes.io/instance-type in (g5.xlarge,g5.2xlarge)",
		"--pool-budget= spot : 0 : spot=true,!example.com/keep")
	if err != nil {
		t.Fatal(err)
	}
	if c, err = o.Complete(); err != nil {
		t.Fatal(err)
	}
	d := c.Controller.Decide
	if d.TopologyKey != "example.com/rack" || d.MaxConcurrentPerDomain != 2 || !d.OneDomainAtATime || len(d.PoolBudgets) != 2 {
		t.Fatalf("config: %+v", d)
	}
	gpu, spot := d.PoolBudgets[0], d.PoolBudgets[1]
	if gpu.Name != "gpu" || gpu.MaxConcurrent != 1 || gpu.Selector.String() != "node.kubernetes.io/instance-type in (g5.2xlarge,g5.xlarge)" {
		t.Errorf("gpu pool: %s %d %s", gpu.Name, gpu.MaxConcurrent, gpu.Selector)
	}
	if spot.Name != "spot" || spot.MaxConcurrent != 0 || spot.Selector.String() != "!example.com/keep,spot=true" {
		t.Errorf("spot pool: %s %d %s", spot.Name, spot.MaxConcurrent, spot.Selector)
	}
}

func TestBudgetFlagsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
		says string
	}{
		{[]string{"--topology-key="}, "--topology-key", "invalid label key"},
		{[]string{"--topology-key=a b"}, "--topology-key", "invalid label key"},
		{[]string{"--max-concurrent-per-domain=-1"}, "--max-concurrent-per-domain", "0 (no cap) or more"},
		{[]string{"--pool-budget=gpu"}, "--pool-budget", "want NAME:MAX:SELECTOR"},
		{[]string{"--pool-budget=gpu:1"}, "--pool-budget", "want NAME:MAX:SELECTOR"},
		{[]string{"--pool-budget=GPU pool:1:a=b"}, "--pool-budget", "invalid pool name"},
		{[]string{"--pool-budget=gpu:one:a=b"}, "--pool-budget", "MAX must be"},
		{[]string{"--pool-budget=gpu:-1:a=b"}, "--pool-budget", "MAX must be"},
		{[]string{"--pool-budget=gpu:1:a b c"}, "--pool-budget", "invalid selector"},
		{[]string{"--pool-budget=gpu:1:"}, "--pool-budget", "empty selector"},
		{[]string{"--pool-budget=gpu:1:a=b", "--pool-budget=gpu:2:c=d"}, "--pool-budget", "given twice"},
	} {
		_, err := parse(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.flag+":") || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v: error %v does not name %s saying %q", tc.args, err, tc.flag, tc.says)
		}
	}
}
