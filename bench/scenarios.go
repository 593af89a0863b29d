package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/harness"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// setup starts a harness, then the recorder, then the controllers (so the
// recorder sees every node the controllers put out). stop ends everything
// and joins into *errp an error naming the nodes if more than the
// controllers' --max-concurrent were ever out at once.
func setup(ctx context.Context, cfg config, hc harness.Config) (*harness.Harness, *recorder, func(errp *error), error) {
	hc.Cluster.Logf = cfg.logf
	if hc.Cluster.NodeLeaseSeconds == 0 && hc.Cluster.Nodes > 500 {
		hc.Cluster.NodeLeaseSeconds = 600 // leave CPU for what is measured
	}
	hc.Cluster.AuditPolicy = auditPolicy
	if hc.Detectors && hc.Cluster.Nodes > cfg.processDetectorLimit {
		hc.InProcessDetectors = true
	}
	controllers := hc.ControllerReplicas
	hc.ControllerReplicas = 0
	limit, err := maxConcurrentOf(hc.ControllerArgs)
	if err != nil {
		return nil, nil, nil, err
	}
	started := time.Now()
	h, err := harness.Start(ctx, hc)
	var rec *recorder
	stop := func(errp *error) {
		if h == nil {
			return
		}
		h.Stop()
		if rec != nil && controllers > 0 {
			if err := rec.checkOut(limit); err != nil {
				*errp = errors.Join(*errp, err)
			}
		}
		if cfg.keepLogs || (errp != nil && *errp != nil) {
			cfg.logf("logs kept in %s", h.Cluster.LogDir)
		} else {
			h.Cluster.Remove()
		}
	}
	fail := func(err error) (*harness.Harness, *recorder, func(*error), error) {
		stop(&err)
		return nil, nil, nil, err
	}
	if err != nil {
		return fail(err)
	}
	cfg.logf("harness with %d nodes up in %s", len(h.Nodes), time.Since(started).Round(100*time.Millisecond))
	if rec, err = startRecorder(ctx, h.Cluster.Client); err != nil {
		return fail(err)
	}
	for range controllers {
		if _, err := h.StartController(); err != nil {
			return fail(err)
		}
	}
	return h, rec, stop, nil
}

// maxConcurrentOf is the --max-concurrent in a controller's arguments (the
// controller's default, 1, if none).
func maxConcurrentOf(args []string) (int, error) {
	k := 1
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--max-concurrent="); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("bad controller argument %q", a)
			}
			k = n
		}
	}
	return k, nil
}

func controllerArgs(maxConcurrent int, extra ...string) []string {
	return append([]string{fmt.Sprintf("--max-concurrent=%d", maxConcurrent), "--min-reboot-interval=0"}, extra...)
}

// waitAll waits until pred holds for every node of the harness.
func waitAll(ctx context.Context, h *harness.Harness, rec *recorder, pred func(*corev1.Node) bool) error {
	for _, n := range h.Nodes {
		if _, err := rec.wait(ctx, n.Name(), pred); err != nil {
			return fmt.Errorf("node %s: %w", n.Name(), err)
		}
	}
	return nil
}

// 1. Detection latency: sentinel created → RebootRequired=True seen by a
// watcher of the Node, and removed → False.
func benchDetection(ctx context.Context, cfg config, res *Results) (err error) {
	h, rec, stop, err := setup(ctx, cfg, harness.Config{Cluster: framework.Options{Nodes: 1}, Detectors: true})
	if err != nil {
		return err
	}
	defer stop(&err)
	node := h.Nodes[0]
	if _, err := rec.wait(ctx, node.Name(), hasCondition(corev1.ConditionFalse)); err != nil {
		return err
	}
	// Footprint of an idle detector process.
	pid := node.Agent().Pid()
	a, err := sampleProc(pid)
	if err != nil {
		return err
	}
	select {
	case <-time.After(cfg.idleWindow): // the measurement window itself
	case <-ctx.Done():
		return ctx.Err()
	}
	b, err := sampleProc(pid)
	if err != nil {
		return err
	}
	fp := footprint(a, b)
	res.value("footprint", "detector RSS, idle", fp.RSSMiB, "MiB", "< 20 MiB", fmt.Sprintf("anonymous %.1f MiB, mapped binary %.1f MiB", fp.AnonMiB, fp.FileMiB))
	res.value("footprint", "detector CPU, idle", fp.CPUPercent, "% of a core", "", fmt.Sprintf("over %.0fs", fp.WindowSec))

	// Trials are paced: each change costs the detector a patch and an event,
	// and its client allows 10 requests a second (burst 20). Back-to-back
	// changes would measure that rate limiter, not the detection; a
	// sentinel changes a few times a day on a real node.
	pace := time.NewTicker(300 * time.Millisecond)
	defer pace.Stop()
	next := func() error {
		select {
		case <-pace.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var created, removed []time.Duration
	for range cfg.detectionTrials {
		if err := next(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := node.CreateSentinel(); err != nil {
			return err
		}
		t1, err := rec.wait(ctx, node.Name(), hasCondition(corev1.ConditionTrue))
		if err != nil {
			return err
		}
		created = append(created, t1.Sub(t0))
		if err := next(); err != nil {
			return err
		}
		t0 = time.Now()
		if err := node.RemoveSentinel(); err != nil {
			return err
		}
		t1, err = rec.wait(ctx, node.Name(), hasCondition(corev1.ConditionFalse))
		if err != nil {
			return err
		}
		removed = append(removed, t1.Sub(t0))
	}
	res.latency("detection", "sentinel created → condition True", summarize(created), "p99 < 100 ms", "")
	res.latency("detection", "sentinel removed → condition False", summarize(removed), "p99 < 100 ms", "")
	return nil
}

// 2. Reaction latency: condition True → node cordoned, with a free slot.
func benchReaction(ctx context.Context, cfg config, res *Results) (err error) {
	h, rec, stop, err := setup(ctx, cfg, harness.Config{
		Cluster: framework.Options{Nodes: 2}, Detectors: true, RebootDelay: 100 * time.Millisecond,
		ControllerReplicas: 1, ControllerArgs: controllerArgs(1),
	})
	if err != nil {
		return err
	}
	defer stop(&err)
	var samples []time.Duration
	for i := range cfg.reactionTrials {
		node := h.Nodes[i%len(h.Nodes)]
		if _, err := rec.wait(ctx, node.Name(), func(n *corev1.Node) bool {
			return idleAndSchedulable(n) && conditionStatus(n) == corev1.ConditionFalse
		}); err != nil {
			return err
		}
		if err := node.CreateSentinel(); err != nil {
			return err
		}
		tTrue, err := rec.wait(ctx, node.Name(), hasCondition(corev1.ConditionTrue))
		if err != nil {
			return err
		}
		tTaken, err := rec.wait(ctx, node.Name(), func(n *corev1.Node) bool { return n.Spec.Unschedulable })
		if err != nil {
			return err
		}
		samples = append(samples, tTaken.Sub(tTrue))
		// The reboot clears the sentinel; wait for the node to be back.
		if _, err := rec.wait(ctx, node.Name(), func(n *corev1.Node) bool {
			return idleAndSchedulable(n) && conditionStatus(n) == corev1.ConditionFalse
		}); err != nil {
			return err
		}
	}
	res.latency("reaction", "condition True → cordoned (free slot)", summarize(samples), "p99 < 100 ms", "")
	return nil
}

// 3. Hand-off latency: node N uncordoned (done) → node N+1 cordoned, with
// --max-concurrent 1.
func benchHandoff(ctx context.Context, cfg config, res *Results) (err error) {
	h, rec, stop, err := setup(ctx, cfg, harness.Config{
		Cluster: framework.Options{Nodes: cfg.handoffNodes}, Detectors: true, RebootDelay: 200 * time.Millisecond,
		ControllerReplicas: 1, ControllerArgs: controllerArgs(1),
	})
	if err != nil {
		return err
	}
	defer stop(&err)
	if err := waitAll(ctx, h, rec, hasCondition(corev1.ConditionFalse)); err != nil {
		return err
	}
	start := time.Now()
	for _, n := range h.Nodes {
		if err := n.CreateSentinel(); err != nil {
			return err
		}
	}
	if err := waitRebootedOnce(ctx, h, rec); err != nil {
		return err
	}
	var samples []time.Duration
	var lastDone time.Time
	for _, tr := range rec.since(start) {
		switch tr.kind {
		case "done":
			lastDone = tr.at
		case "taken":
			if !lastDone.IsZero() {
				samples = append(samples, tr.at.Sub(lastDone))
			}
		}
	}
	res.latency("handoff", "node N uncordoned → node N+1 cordoned", summarize(samples), "p99 < 100 ms", "kured: up to one --period (1 h)")
	res.value("handoff", "max nodes out at once", float64(rec.maxNodesOut()), "nodes", "≤ 1", "")
	return nil
}

// waitRebootedOnce waits until every host rebooted and its node is back in
// service with the condition False.
func waitRebootedOnce(ctx context.Context, h *harness.Harness, rec *recorder) error {
	for _, n := range h.Nodes {
		if _, err := n.WaitForReboots(ctx, 1); err != nil {
			return err
		}
	}
	return waitAll(ctx, h, rec, func(n *corev1.Node) bool {
		return idleAndSchedulable(n) && conditionStatus(n) == corev1.ConditionFalse
	})
}

// 5a. Steady state: no reboots; requests per node per hour by client.
func benchSteady(ctx context.Context, cfg config, res *Results) (err error) {
	probe, err := freeAddr()
	if err != nil {
		return err
	}
	h, rec, stop, err := setup(ctx, cfg, harness.Config{
		Cluster: framework.Options{Nodes: cfg.steadyNodes}, Detectors: true,
		ControllerReplicas: 1, ControllerArgs: controllerArgs(1, "--health-probe-bind-address="+probe),
	})
	if err != nil {
		return err
	}
	defer stop(&err)
	if err := waitAll(ctx, h, rec, hasCondition(corev1.ConditionFalse)); err != nil {
		return err
	}
	// Steady state starts once the leader runs: leading (a standby's
	// /readyz answers too), then its /readyz, which then waits for the
	// caches and the slot record's term (three requests once per start,
	// not load per node).
	if _, err := h.LeaderProcess(ctx); err != nil {
		return err
	}
	if err := waitReady(ctx, "http://"+probe+"/readyz"); err != nil {
		return err
	}
	ctrlPid := h.Controllers[0].Pid()
	a, err := sampleProc(ctrlPid)
	if err != nil {
		return err
	}
	start := time.Now()
	select {
	case <-time.After(cfg.steadyWindow): // the measurement window itself
	case <-ctx.Done():
		return ctx.Err()
	}
	end := time.Now()
	b, err := sampleProc(ctrlPid)
	if err != nil {
		return err
	}
	entries, err := readAudit(h.Cluster.AuditLog(), start, end)
	if err != nil {
		return err
	}
	hours := end.Sub(start).Hours()
	var perNode, election []auditEntry
	for _, e := range entries {
		if e.ObjectRef.Resource == "leases" {
			election = append(election, e) // one Lease per cluster, not per node
		} else {
			perNode = append(perNode, e)
		}
	}
	res.value("api", "steady state: controller leader-election requests per hour (whole cluster)", float64(len(election))/hours, "req/h", "", "Lease renewals every --leader-elect-retry-period")
	byClient := countBy(perNode, auditEntry.client)
	n := float64(len(h.Nodes))
	note := fmt.Sprintf("%d nodes, %s window, detector --heartbeat-period 5m", len(h.Nodes), cfg.steadyWindow)
	res.value("api", "steady state: controller requests per node per hour", float64(byClient["controller"])/n/hours, "req/node/h", "0", note+"; leader-election Lease renewals excluded")
	res.value("api", "steady state: detector requests per node per hour", float64(byClient["detector"])/n/hours, "req/node/h", "heartbeat only", note)
	res.Details["steady_requests_by_client_verb_resource"] = countBy(entries, func(e auditEntry) string {
		return e.client() + " " + e.Verb + " " + e.resource()
	})
	fp := footprint(a, b)
	res.value("footprint", fmt.Sprintf("controller RSS, idle, %d nodes", len(h.Nodes)), fp.RSSMiB, "MiB", "< 100 MiB at 5,000 nodes", "")
	res.value("footprint", fmt.Sprintf("controller CPU, idle, %d nodes", len(h.Nodes)), fp.CPUPercent, "% of a core", "", "")
	return nil
}

// 5c. Waiting nodes: requests per waiting node per hour while one node holds
// the only slot (its reboot never completes). The window opens once the
// wait is established — every waiting node announced (its RebootQueued
// event) and its MaintenancePlanned condition written — and what queueing
// a node cost the controller, once per waiting node, is reported on its
// own: it is not a rate, and extrapolating it to an hour would make it one.
func benchWaiting(ctx context.Context, cfg config, res *Results) (err error) {
	h, rec, stop, err := setup(ctx, cfg, harness.Config{
		Cluster: framework.Options{Nodes: cfg.waitingNodes}, Detectors: true, RebootDelay: 24 * time.Hour,
		ControllerReplicas: 1, ControllerArgs: controllerArgs(1, "--reboot-timeout=24h"),
	})
	if err != nil {
		return err
	}
	defer stop(&err)
	if err := waitAll(ctx, h, rec, hasCondition(corev1.ConditionFalse)); err != nil {
		return err
	}
	queued, err := watchQueued(ctx, h.Cluster.Client)
	if err != nil {
		return err
	}
	requested := time.Now()
	for _, n := range h.Nodes {
		if err := n.CreateSentinel(); err != nil {
			return err
		}
	}
	if err := waitAll(ctx, h, rec, hasCondition(corev1.ConditionTrue)); err != nil {
		return err
	}
	// One node is taken and goes down for good; the rest wait.
	active, err := rec.waitAny(ctx, func(n *corev1.Node) bool { return !framework.NodeReady(n) })
	if err != nil {
		return err
	}
	var waiting []string
	for _, n := range h.Nodes {
		if n.Name() != active {
			waiting = append(waiting, n.Name())
		}
	}
	if _, err := queued.waitAll(ctx, waiting, rec); err != nil {
		return err
	}
	for _, name := range waiting {
		if _, err := rec.wait(ctx, name, hasLifecycleCondition(contract.ConditionMaintenancePlanned)); err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
	}
	return measureWaiting(ctx, cfg, res, h, active, requested)
}

// hasLifecycleCondition reports whether the node carries condition t,
// whatever its status.
func hasLifecycleCondition(t string) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool {
		for _, c := range n.Status.Conditions {
			if string(c.Type) == t {
				return true
			}
		}
		return false
	}
}

// measureWaiting reports the controller's requests about the waiting nodes
// from the first sentinel to now (queueing them, once), then every client's
// requests about them over the window.
func measureWaiting(ctx context.Context, cfg config, res *Results, h *harness.Harness, active string, requested time.Time) error {
	start := time.Now()
	select {
	case <-time.After(cfg.waitingWindow): // the measurement window itself
	case <-ctx.Done():
		return ctx.Err()
	}
	end := time.Now()
	before, err := requestsAboutWaiting(h, active, requested, start)
	if err != nil {
		return err
	}
	var queueing []auditEntry // the controller's writes of waiting nodes and their events
	for _, e := range before {
		if e.client() == "controller" && (e.ObjectRef.Resource == "nodes" || e.ObjectRef.Resource == "events") {
			queueing = append(queueing, e)
		}
	}
	inWindow, err := requestsAboutWaiting(h, active, start, end)
	if err != nil {
		return err
	}
	waiting := float64(len(h.Nodes) - 1)
	note := fmt.Sprintf("%d nodes waiting behind 1 taken node; all clients", len(h.Nodes)-1)
	res.value("api", "waiting nodes: controller requests per waiting node to queue it (once)", float64(len(queueing))/waiting, "requests", "",
		fmt.Sprintf("%d nodes waiting behind 1 taken node; from the first sentinel to the last RebootQueued event and MaintenancePlanned condition", len(h.Nodes)-1))
	res.value("api", "waiting nodes: requests per waiting node per hour", float64(len(inWindow))/waiting/end.Sub(start).Hours(), "req/node/h", "0",
		fmt.Sprintf("%s; %s window, opened once every waiting node was announced", note, cfg.waitingWindow))
	byClient := func(e auditEntry) string { return e.client() + " " + e.Verb + " " + e.resource() }
	res.Details["waiting_queueing_requests"] = countBy(queueing, byClient)
	res.Details["waiting_requests"] = countBy(inWindow, byClient)
	return nil
}

// requestsAboutWaiting returns the audited requests in [from, to) about
// any node but active (its events included), the controller's Lease
// renewals excluded.
func requestsAboutWaiting(h *harness.Harness, active string, from, to time.Time) ([]auditEntry, error) {
	entries, err := readAudit(h.Cluster.AuditLog(), from, to)
	if err != nil {
		return nil, err
	}
	var about []auditEntry
	for _, e := range entries {
		name := e.ObjectRef.Name
		if e.ObjectRef.Resource == "events" {
			name, _, _ = strings.Cut(name, ".")
		}
		if name != active && !(e.ObjectRef.Resource == "leases" && e.ObjectRef.Namespace == harness.Namespace) {
			about = append(about, e)
		}
	}
	return about, nil
}
