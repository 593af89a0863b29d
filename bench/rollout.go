package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/bench/replacement"
	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/harness"
)

// rolloutScenario is a rollout measured against its physical limit.
type rolloutScenario struct {
	bench          string
	nodes, reboot  int // nodes in the cluster, how many need a reboot
	concurrent     int
	rebootTime     time.Duration
	replicas       int32 // of the workload
	maxUnavailable int32 // of its PodDisruptionBudget
	controllers    int
}

func (s rolloutScenario) note() string {
	return fmt.Sprintf("%d of %d nodes, --max-concurrent %d, reboot %s, %d pods under a PDB maxUnavailable %d",
		s.reboot, s.nodes, s.concurrent, s.rebootTime, s.replicas, s.maxUnavailable)
}

// 4. Rollout makespan against the limit, and 5b. API requests per rebooted
// node: 100 nodes, --max-concurrent 10, one pod per node.
func benchRollout(ctx context.Context, cfg config, res *Results) error {
	n, k := cfg.rolloutNodes, cfg.rolloutConcurrent
	return runRollout(ctx, cfg, res, rolloutScenario{bench: "rollout", nodes: n, reboot: n, concurrent: k, rebootTime: cfg.rolloutReboot,
		replicas: int32(n), maxUnavailable: int32(k), controllers: 1})
}

// 4b. The demo's scenario (`make demo`): 5 nodes, 3 need a reboot,
// --max-concurrent 1, 3 s reboots, 10 pods under a PDB that allows one
// disruption at a time, two controller replicas.
func benchDemo(ctx context.Context, cfg config, res *Results) error {
	return runRollout(ctx, cfg, res, rolloutScenario{bench: "demo", nodes: 5, reboot: 3, concurrent: 1, rebootTime: cfg.demoReboot,
		replicas: 10, maxUnavailable: 1, controllers: 2})
}

func runRollout(ctx context.Context, cfg config, res *Results, sc rolloutScenario) (err error) {
	h, rec, stop, err := setup(ctx, cfg, harness.Config{
		Cluster: framework.Options{Nodes: sc.nodes}, Detectors: true, RebootDelay: sc.rebootTime,
		ControllerReplicas: sc.controllers, ControllerArgs: controllerArgs(sc.concurrent),
		Workload: &harness.Workload{Replicas: sc.replicas, MaxUnavailable: sc.maxUnavailable},
	})
	if err != nil {
		return err
	}
	defer stop(&err)
	hosts := h.Nodes[:sc.reboot]
	if err := waitAll(ctx, h, rec, hasCondition(corev1.ConditionFalse)); err != nil {
		return err
	}
	leader, err := h.LeaderProcess(ctx)
	if err != nil {
		return err
	}
	pods, err := replacement.Start(ctx, h.Cluster.Client, "demo")
	if err != nil {
		return err
	}
	before, err := sampleProc(leader.Pid())
	if err != nil {
		return err
	}
	start := time.Now()
	for _, host := range hosts {
		if err := host.CreateSentinel(); err != nil {
			return err
		}
	}
	for _, host := range hosts {
		if _, err := host.WaitForReboots(ctx, 1); err != nil {
			return err
		}
		if _, err := rec.wait(ctx, host.Name(), func(n *corev1.Node) bool {
			return idleAndSchedulable(n) && conditionStatus(n) == corev1.ConditionFalse
		}); err != nil {
			return err
		}
	}
	end := time.Now()
	after, err := sampleProc(leader.Pid())
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	repl, err := pods.Wait(wctx)
	cancel()
	if err != nil {
		return fmt.Errorf("replacement times: %w", err)
	}

	taken, authorized, done := map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	seenAfter := map[string]map[string]time.Time{} // kind → node → first time after the authorization
	var first, last time.Time
	for _, tr := range rec.since(start) {
		if a, ok := authorized[tr.node]; ok && !tr.at.Before(a) {
			if seenAfter[tr.kind] == nil {
				seenAfter[tr.kind] = map[string]time.Time{}
			}
			if _, seen := seenAfter[tr.kind][tr.node]; !seen {
				seenAfter[tr.kind][tr.node] = tr.at
			}
		}
		switch tr.kind {
		case "taken":
			if _, ok := taken[tr.node]; !ok {
				taken[tr.node] = tr.at
				if first.IsZero() {
					first = tr.at
				}
			}
		case "authorized":
			authorized[tr.node] = tr.at
		case "done":
			done[tr.node] = tr.at
			last = tr.at
		}
	}
	var drains, reboots, took []time.Duration
	for node, t := range taken {
		if a, ok := authorized[node]; ok {
			drains = append(drains, a.Sub(t))
			if d, ok := done[node]; ok {
				reboots = append(reboots, d.Sub(a))
			}
		}
	}
	if len(reboots) != sc.reboot {
		return fmt.Errorf("%d complete node pipelines recorded, want %d", len(reboots), sc.reboot)
	}
	for _, r := range repl {
		took = append(took, r.Took)
	}
	makespan := last.Sub(first)
	limit := replacement.Limit(sc.reboot, sc.concurrent, sc.rebootTime, repl)
	waves := (sc.reboot + sc.concurrent - 1) / sc.concurrent
	note := sc.note()
	b := sc.bench
	res.latency(b, "per node: cordon → drained (authorized)", summarize(drains), "", note)
	res.latency(b, "per node: authorized → back and uncordoned", summarize(reboots), "", note)
	for _, p := range rebootParts(authorized, seenAfter) {
		res.latency(b, "per node, part: "+p.name, summarize(p.took), "", note)
	}
	res.latency(b, "limit part: eviction → replacement Ready elsewhere", summarize(took), "", "measured in this run, every evicted pod")
	res.value(b, "limit part: reboot (the simulator's set time)", sc.rebootTime.Seconds(), "s", "", "")
	res.value(b, fmt.Sprintf("limit = %d waves × (reboot + mean replacement)", waves), limit.Seconds(), "s", "", "")
	res.value(b, "makespan (first cordon → last uncordon)", makespan.Seconds(), "s", "", note)
	res.value(b, "makespan / limit", makespan.Seconds()/limit.Seconds(), "ratio", "≤ 1.10", "")
	res.value(b, "max nodes out at once", float64(rec.maxNodesOut()), "nodes", fmt.Sprintf("≤ %d", sc.concurrent), "")

	entries, err := readAudit(h.Cluster.AuditLog(), start.Add(-time.Second), end.Add(time.Second))
	if err != nil {
		return err
	}
	callOf := func(e auditEntry) string { return e.client() + " " + e.Verb + " " + e.resource() }
	byCall := countBy(entries, callOf)
	res.latency(b, "eviction request, in the API server", summarize(durations(entries, "controller create pods/eviction", callOf)), "",
		"received → answered (audit log); concurrent evictions under one budget cost the loser 500 ms each")
	res.value(b, "eviction attempts per rebooted node", float64(byCall["controller create pods/eviction"])/float64(sc.reboot), "requests", "",
		fmt.Sprintf("%d pods evicted; the rest refused by the budget (429)", len(repl)))
	if b != "rollout" {
		return nil
	}
	fp := footprint(before, after)
	res.value("footprint", fmt.Sprintf("controller RSS, rollout of %d nodes", sc.reboot), fp.RSSMiB, "MiB", "", "")
	res.value("footprint", fmt.Sprintf("controller CPU, rollout of %d nodes", sc.reboot), fp.CPUPercent, "% of a core", "", "")
	byClient := countBy(entries, auditEntry.client)
	res.value("api", "requests per rebooted node, controller", float64(byClient["controller"])/float64(sc.reboot), "requests", "", "watches excluded")
	res.value("api", "requests per rebooted node, detector", float64(byClient["detector"])/float64(sc.reboot), "requests", "", "watches excluded")
	res.Details["rollout_requests_by_client_verb_resource"] = byCall
	return nil
}

// rebootPart is one step of "authorized → back and uncordoned" in every
// node that made it.
type rebootPart struct {
	name string
	took []time.Duration
}

// rebootParts splits "authorized → back and uncordoned" at the steps the
// recorder saw after each node's authorization: the detector's commitment,
// the new boot ID, Ready, and the controller's release of the node.
func rebootParts(authorized map[string]time.Time, after map[string]map[string]time.Time) []rebootPart {
	steps := []struct{ kind, name string }{
		{"", "authorized"}, {"committed", "detector committed (rebooting)"}, {"rebooted", "new boot ID reported"},
		{"ready", "Ready"}, {"done", "released (state removed)"},
	}
	var parts []rebootPart
	for i := 1; i < len(steps); i++ {
		p := rebootPart{name: steps[i-1].name + " → " + steps[i].name}
		for node, a := range authorized {
			from, ok := a, true
			if steps[i-1].kind != "" {
				from, ok = after[steps[i-1].kind][node]
			}
			to, ok2 := after[steps[i].kind][node]
			if ok && ok2 {
				p.took = append(p.took, to.Sub(from))
			}
		}
		parts = append(parts, p)
	}
	return parts
}
