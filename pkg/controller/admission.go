package controller

// The admission pass: count the nodes out, collect the nodes waiting for a
// slot, ask the gates that cost a request, and take the nodes decide.Admit
// picks. It is the only place that takes nodes.

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/gates"
	"github.com/nodereboot/nodereboot/pkg/notify"
)

// admit is the admission pass: it counts the nodes out, collects the nodes
// waiting for a slot, and takes the ones decide.Admit picks. It is the only
// place that takes nodes, and the workqueue never runs it twice at once.
func (c *Controller) admit(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	cands, cl := c.observeCluster(nodes)
	now := c.clock.Now()
	ad := c.admitThroughGates(ctx, cands, cl, now)
	c.recordBlocked(ad)
	c.announce(ad)
	if len(ad.Take) > 0 || ad.Blocked() {
		logger.V(2).Info("Admission", "out", cl.Out, "take", ad.Take, "waiting", ad.Waiting, "blocked", ad.BlockedMessage())
	}
	if !ad.Until.IsZero() {
		// A block lifts by itself then (the window opens, a blocker
		// is looked at again).
		c.admission.AddAfter(admissionKey, ad.Until.Sub(now))
	}
	byName := make(map[string]*v1.Node, len(nodes))
	for _, n := range nodes {
		byName[n.Name] = n
	}
	for _, name := range ad.Take {
		if err := c.take(ctx, byName[name]); err != nil {
			return err
		}
	}
	return nil
}

// observeCluster counts the nodes out and collects the candidates: the
// nodes whose decision is Queue. Out are the nodes of the slot record (the
// controller's own count, which no node writer can change), the nodes a
// take of ours may still land on, and every node marked as out, whoever
// marked it; each counts in its domain and pools too (decide.AddOut). It
// also sets the nodes gauge.
func (c *Controller) observeCluster(nodes []*v1.Node) ([]decide.Candidate, decide.Cluster) {
	var cands []decide.Candidate
	var cl decide.Cluster
	counts := map[string]float64{}
	expected := c.own.takesInFlight(nodes)
	held := map[string]bool{}
	for _, name := range c.slots.Nodes() {
		held[name] = true
	}
	// A node of the record that is gone is counted until its sync (on
	// the delete) gives the slot back.
	gone := len(held)
	var free []*v1.Node // selected, not out
	for _, n := range nodes {
		if held[n.Name] {
			gone--
		}
		if held[n.Name] || expected[n.Name] || decide.Marked(n) {
			cl.AddOut(n, &c.cfg.Decide)
			counts[gaugeState(n, held[n.Name])]++
			continue
		}
		if decide.Selected(n, &c.cfg.Decide) {
			free = append(free, n)
			if !decide.IsReady(n) {
				cl.NotReady = append(cl.NotReady, n.Name)
			}
		}
		if a := decide.Node(c.input(n)); a.Kind == decide.Queue {
			cands = append(cands, decide.NewCandidate(n, a.RequestTime, &c.cfg.Decide))
		}
	}
	cl.Out += gone
	cl.CordonedByOthers = gates.CordonedByOthers(free)
	if c.cfg.Decide.PoolLabel != "" {
		cl.PoolsInUpgrade = gates.PoolsInUpgrade(free, c.cfg.Decide.PoolLabel, c.cfg.Decide.PoolVersionLabel)
	}
	counts[NodesQueued] = float64(len(cands))
	for _, s := range gaugeStates {
		c.metrics.Nodes.WithLabelValues(s).Set(counts[s])
	}
	return cands, cl
}

// gaugeState is the nodes gauge's label for a node that is out.
func gaugeState(n *v1.Node, held bool) string {
	s, stated := decide.StateOf(n)
	switch {
	case !stated:
		return string(contract.StateDraining)
	case !held:
		return NodesInvalid
	}
	if _, err := contract.ParseState(s); err != nil || s == "" {
		return NodesInvalid
	}
	return s
}

// admitThroughGates runs decide.Admit with the cluster-wide gates: the
// pause, then — only when a node would be taken now, since they cost a
// request — the alerts once, and the blocking pods of each node about to
// be taken (a blocked node lets the next one in the queue go).
func (c *Controller) admitThroughGates(ctx context.Context, cands []decide.Candidate, cl decide.Cluster, now time.Time) decide.Admission {
	if c.pause != nil {
		if paused, why := c.pause.Paused(); paused {
			msg := fmt.Sprintf("paused (%s annotation on ConfigMap %s/%s)", contract.AnnotationPaused, c.cfg.PauseNamespace, contract.ConfigMapName)
			if why != "" {
				msg += ": " + why
			}
			cl.Blocks = append(cl.Blocks, decide.Block{Reason: decide.BlockedPaused, Message: msg})
		}
	}
	ad := decide.Admit(cands, cl, &c.cfg.Decide, now)
	if len(ad.Take) > 0 {
		if b := c.alertsBlock(ctx, now); b != nil {
			cl.Blocks = append(cl.Blocks, *b)
			ad = decide.Admit(cands, cl, &c.cfg.Decide, now)
		}
	}
	if c.cfg.BlockingPods == nil {
		return ad
	}
	index := make(map[string]int, len(cands))
	for i, cd := range cands {
		index[cd.Name] = i
	}
	checked := map[string]bool{}
	for again := true; again; {
		again = false
		for _, name := range ad.Take {
			if checked[name] {
				continue
			}
			checked[name] = true
			if b := c.podBlock(ctx, name, now); b != nil {
				cands[index[name]].Block = b
				again = true
			}
		}
		if again {
			ad = decide.Admit(cands, cl, &c.cfg.Decide, now)
		}
	}
	return ad
}

// alertsBlock asks Prometheus for blocking alerts (nil: none, or no
// Prometheus configured). A blocking answer is reused until it is due
// again (--blocked-recheck-interval); a clear one never is. An unreachable
// Prometheus blocks.
func (c *Controller) alertsBlock(ctx context.Context, now time.Time) *decide.Block {
	if c.cfg.Alerts == nil {
		return nil
	}
	c.mu.Lock()
	if b := c.alertBlock; b != nil && now.Before(b.Until) {
		cp := *b
		c.mu.Unlock()
		return &cp
	}
	c.mu.Unlock()
	names, err := c.cfg.Alerts.Active(ctx)
	var b *decide.Block
	until := now.Add(c.cfg.RecheckInterval)
	switch {
	case err != nil:
		klog.FromContext(ctx).Info("Cannot ask Prometheus for alerts: blocking reboots", "err", err)
		b = &decide.Block{Reason: decide.BlockedPrometheus, Until: until,
			Message: fmt.Sprintf("cannot ask Prometheus for alerts, so reboots are blocked (fail safe): %v", err)}
	case len(names) > 0:
		b = &decide.Block{Reason: decide.BlockedAlerts, Until: until, Message: gates.AlertsMessage(names)}
	}
	c.mu.Lock()
	c.alertBlock = b
	c.mu.Unlock()
	return b
}

// podBlock looks up the blocking pods of a node about to be taken (nil:
// none). A blocking answer is reused until it is due again.
func (c *Controller) podBlock(ctx context.Context, node string, now time.Time) *decide.Block {
	c.mu.Lock()
	if b, ok := c.podBlocks[node]; ok && now.Before(b.Until) {
		c.mu.Unlock()
		return &b
	}
	c.mu.Unlock()
	pods, err := c.cfg.BlockingPods.List(ctx, c.client, node)
	until := now.Add(c.cfg.RecheckInterval)
	var b *decide.Block
	switch {
	case err != nil:
		b = &decide.Block{Reason: decide.BlockedPods, Until: until,
			Message: fmt.Sprintf("cannot look up blocking pods, so the reboot is blocked (fail safe): %v", err)}
	case len(pods) > 0:
		b = &decide.Block{Reason: decide.BlockedPods, Until: until, Message: gates.PodsMessage(pods)}
	}
	c.mu.Lock()
	if b != nil {
		c.podBlocks[node] = *b
	} else {
		delete(c.podBlocks, node)
	}
	c.mu.Unlock()
	return b
}

// authorizeGate checks the gates again for a drained node, right before
// its authorization: its blocking pods (from its pod watch, no request)
// and the alerts.
func (c *Controller) authorizeGate(ctx context.Context, node string, pods []*v1.Pod, now time.Time) *decide.Block {
	if c.cfg.BlockingPods != nil {
		if names := c.cfg.BlockingPods.Match(node, pods); len(names) > 0 {
			// The pod watch requeues the node when they go.
			return &decide.Block{Reason: decide.BlockedPods, Message: gates.PodsMessage(names)}
		}
	}
	return c.alertsBlock(ctx, now)
}

// take starts the pipeline on a node with one patch: cordon, state
// Draining, state-since, cordoned-by-us (only if it was schedulable).
func (c *Controller) take(ctx context.Context, n *v1.Node) error {
	logger := klog.FromContext(ctx).WithValues("node", n.Name)
	p := decide.TakePatch(n, c.clock.Now(), &c.cfg.Decide)
	if c.cfg.DryRun {
		c.dryRunEvent(ctx, n.Name, decide.Action{Kind: "Take", Message: "cordon and drain"})
		return nil
	}
	// No reconciler gives this node's slot back until the take's answer
	// is known (releaseIfOut).
	c.takes.LockKey(n.Name)
	defer func() { _ = c.takes.UnlockKey(n.Name) }()
	// From here on the take may land: the node counts as out and is not
	// decided on until the cache shows a newer version of it, and only
	// such a version gives its slot back.
	c.own.beginTake(n)
	// The slot first: a take the record does not show never happens, so
	// every node this controller puts out is counted, by it and by the
	// next leader, before the node is written.
	if err := c.holdSlot(ctx, n.Name); err != nil {
		c.own.takeRefused(n.Name)
		return err
	}
	_, err := c.patch(ctx, n, p)
	switch {
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		// Refused: the node was not taken. Give the slot back; on a
		// conflict, look again.
		c.own.takeRefused(n.Name)
		if rerr := c.releaseSlot(ctx, n.Name); rerr != nil {
			return rerr
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	case err != nil:
		// The patch may have been applied: the node stays counted and
		// keeps its slot until the cache shows a newer version of it.
		return fmt.Errorf("take node %s: %w", n.Name, err)
	}
	logger.Info("Took node for reboot")
	ref := contract.NodeRef(n.Name)
	if _, ours := p.Annotations[contract.AnnotationCordonedByUs]; ours {
		c.recorder.Event(ref, v1.EventTypeNormal, contract.ReasonCordoned, "Cordoned for a reboot")
	}
	c.recorder.Eventf(ref, v1.EventTypeNormal, contract.ReasonDraining, "Draining for a reboot (timeout %s)", c.cfg.Decide.DrainTimeout)
	c.notify(notify.StepDrain, n.Name, contract.ReasonDraining, fmt.Sprintf("cordoned; draining for a reboot (timeout %s)", c.cfg.Decide.DrainTimeout))
	c.mu.Lock()
	delete(c.queued, n.Name)
	delete(c.podBlocks, n.Name)
	delete(c.nodeBlocked, n.Name)
	c.mu.Unlock()
	c.queue.Add(n.Name)
	return nil
}
