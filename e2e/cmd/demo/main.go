// Command demo is `make demo`: it starts the local control plane with
// simulated nodes, installs nodereboot (two controller replicas, a detector per
// node, the RBAC of deploy/rbac), puts a workload with a PodDisruptionBudget on
// the nodes, creates the reboot sentinel on some of them and shows the rollout
// live until every one of them has rebooted and is schedulable again. Then it
// prints a timeline per node and shuts everything down.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/nodereboot/nodereboot/bench/replacement"
	"github.com/nodereboot/nodereboot/e2e/aks"
	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/harness"
)

type options struct {
	nodes, reboot, maxConcurrent, replicas int
	rebootTime, timeout                    time.Duration
	// aks: node pools named and labelled as AKS does (package e2e/aks).
	aks bool
}

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func run(args []string, out io.Writer) int {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.IntVar(&o.nodes, "nodes", 5, "simulated nodes")
	fs.IntVar(&o.reboot, "reboot", 3, "how many of them need a reboot")
	fs.IntVar(&o.maxConcurrent, "max-concurrent", 1, "the controller's --max-concurrent")
	fs.IntVar(&o.replicas, "replicas", 0, "replicas of the demo workload (default 2 per node)")
	fs.DurationVar(&o.rebootTime, "reboot-time", 3*time.Second, "how long a simulated reboot keeps a node down")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.BoolVar(&o.aks, "aks", false, "AKS-like node pools: --nodes Linux nodes (a system pool of 2 tainted CriticalAddonsOnly, an Azure Linux node, the rest in nodepool1) and a Windows node that is never touched; the controller takes Linux nodes only (docs/aks.md)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case o.nodes < 1:
		fmt.Fprintln(os.Stderr, "invalid --nodes: need at least 1")
		return 2
	case o.aks && o.nodes < 4:
		fmt.Fprintln(os.Stderr, "invalid --nodes: --aks needs at least 4 (2 system, 1 Azure Linux, 1 in nodepool1)")
		return 2
	case o.reboot < 1 || o.reboot > o.nodes:
		fmt.Fprintf(os.Stderr, "invalid --reboot: must be between 1 and --nodes (%d)\n", o.nodes)
		return 2
	case o.maxConcurrent < 1:
		fmt.Fprintln(os.Stderr, "invalid --max-concurrent: need at least 1")
		return 2
	case o.rebootTime < 0:
		fmt.Fprintln(os.Stderr, "invalid --reboot-time: must not be negative")
		return 2
	}
	if o.replicas == 0 {
		o.replicas = 2 * o.nodes
		if o.aks {
			o.replicas = 2 * (o.nodes - 2) // not on the tainted system pool
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := demo(ctx, o, out); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, o options, out io.Writer) error {
	fmt.Fprintf(out, "nodereboot demo: %d simulated nodes, %d need a reboot, --max-concurrent %d, a reboot takes %s\n\n",
		o.nodes, o.reboot, o.maxConcurrent, o.rebootTime)
	if o.aks {
		fmt.Fprintf(out, "AKS-like node pools: nodepool1 (%d Ubuntu nodes), azlinux (1 Azure Linux node), systempool (2 Ubuntu nodes, CriticalAddonsOnly=true:NoSchedule),\nnpwin (1 Windows node, never touched: the controller takes only kubernetes.io/os=linux nodes).\n\n", o.nodes-3)
	}
	fmt.Fprintln(out, "Starting a local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)")
	fmt.Fprintf(out, "with nodereboot installed: 2 controller replicas, a detector on every node, and a Deployment of\n%d replicas with a PodDisruptionBudget (maxUnavailable 1) spread over the nodes...\n", o.replicas)
	started := time.Now()
	cfg := harness.Config{
		Cluster:            framework.Options{Nodes: o.nodes},
		RebootDelay:        o.rebootTime,
		Detectors:          true,
		ControllerReplicas: 2,
		ControllerArgs:     []string{fmt.Sprintf("--max-concurrent=%d", o.maxConcurrent)},
		Workload:           &harness.Workload{Replicas: int32(o.replicas)},
	}
	if o.aks {
		// The pools are made below; the AKS preset's node selector.
		cfg.Cluster.Nodes, cfg.Workload = 0, nil
		cfg.ControllerArgs = append(cfg.ControllerArgs, "--node-selector=kubernetes.io/os=linux")
	}
	h, err := harness.Start(ctx, cfg)
	if err == nil && o.aks {
		err = aksPools(ctx, h, o)
	}
	if h != nil {
		defer func() {
			fmt.Fprintln(out, "\nShutting down...")
			h.Stop()
			h.Cluster.Remove()
		}()
	}
	if err != nil {
		if h != nil && h.Cluster != nil {
			return fmt.Errorf("%w (logs: %s)", err, h.Cluster.LogDir)
		}
		return err
	}
	fmt.Fprintf(out, "Ready in %s. Component logs: %s\n", time.Since(started).Round(100*time.Millisecond), h.Cluster.LogDir)
	fmt.Fprintf(out, "Try, in another terminal:  %s/kubectl --kubeconfig %s describe node %s\n\n", h.Cluster.BinDir, h.Cluster.AdminKubeconfig, h.Nodes[0].Name())

	for _, n := range h.Nodes {
		nodeColumn = max(nodeColumn, len(n.Name()))
	}
	w := newWatcher(h, o.reboot)
	isTTY, width := false, func() int { return 0 }
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		isTTY = true
		width = func() int {
			cols, _, err := term.GetSize(int(f.Fd()))
			if err != nil {
				return 0
			}
			return cols
		}
	}
	v := newView(out, isTTY, w, width)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := w.start(watchCtx); err != nil {
		return err
	}

	pods, err := replacement.Start(watchCtx, h.Cluster.Client, "demo")
	if err != nil {
		return err
	}
	rolloutStart := time.Now()
	fmt.Fprintf(out, "Creating the sentinel /var/run/reboot-required on %d nodes, as unattended-upgrades would.\n\n", o.reboot)
	for _, n := range h.Nodes[:o.reboot] {
		if err := n.CreateSentinel(); err != nil {
			return err
		}
	}
	err = v.run(ctx, func() bool { return w.done(h.Nodes[:o.reboot]) })
	total := time.Since(rolloutStart)
	v.timeline(rolloutStart, h.Nodes[:o.reboot])
	if err != nil {
		return fmt.Errorf("rollout did not finish: %w (logs: %s)", err, h.Cluster.LogDir)
	}
	fmt.Fprintf(out, "\nAll %d nodes rebooted one authorization each, drained within the budget and uncordoned: %s from the first sentinel to the last uncordon.\n",
		o.reboot, total.Round(100*time.Millisecond))
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	repl, err := pods.Wait(rctx)
	if err != nil {
		return fmt.Errorf("replacement times: %w", err)
	}
	return summary(out, o, w, repl)
}

// summary compares the rollout with its physical limit: per wave of
// --max-concurrent nodes, the reboot itself plus the time Kubernetes took to
// bring an evicted pod's replacement Ready elsewhere (measured in this run),
// as `make bench` does (docs/benchmarks.md).
func summary(out io.Writer, o options, w *watcher, repl []replacement.Replacement) error {
	var first, last time.Time
	for _, host := range w.h.Nodes[:o.reboot] {
		seen := w.timeline(host.Name())
		c, ok1 := seen[stepCordoned]
		u, ok2 := seen[stepUncordoned]
		if !ok1 || !ok2 {
			return fmt.Errorf("%s: cordon or uncordon not seen", host.Name())
		}
		if first.IsZero() || c.Before(first) {
			first = c
		}
		if u.After(last) {
			last = u
		}
	}
	makespan := last.Sub(first)
	limit := replacement.Limit(o.reboot, o.maxConcurrent, o.rebootTime, repl)
	waves := (o.reboot + o.maxConcurrent - 1) / o.maxConcurrent
	fmt.Fprintf(out, "First cordon to last uncordon: %.1f s. The physical limit: %d waves × (%s reboot + %.2f s for an evicted pod's replacement to be Ready elsewhere, mean of %d) = %.1f s.\n",
		makespan.Seconds(), waves, o.rebootTime, replacement.Mean(repl).Seconds(), len(repl), limit.Seconds())
	fmt.Fprintf(out, "makespan / limit = %.2f\n", makespan.Seconds()/limit.Seconds())
	return nil
}

// aksPools creates AKS-like node pools with o.nodes Linux nodes and a
// Windows node, starts a host and a detector on each Linux node (user pools
// first, so that the first nodes to reboot are nodepool1's) and the
// workload on the user pools.
func aksPools(ctx context.Context, h *harness.Harness, o options) error {
	pools := aks.DefaultPools()
	for i := range pools {
		if pools[i].Name == "nodepool1" {
			pools[i].Count = o.nodes - 3
		}
	}
	created, err := aks.CreatePools(ctx, h.Cluster, pools)
	if err != nil {
		return err
	}
	var user, system []string
	for _, name := range created.Linux {
		if created.Pool[name].Mode == "system" {
			system = append(system, name)
		} else {
			user = append(user, name)
		}
	}
	for _, name := range append(user, system...) {
		if _, err := h.AddHost(ctx, name); err != nil {
			return err
		}
	}
	return h.CreateWorkload(ctx, harness.Workload{Replicas: int32(o.replicas)})
}
