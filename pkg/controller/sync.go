package controller

// The reconciler: one node at a time, read what is known of it, decide
// once (decide.Node), write one patch, hand the action to the announcer.

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

func (c *Controller) syncHandler(ctx context.Context, key string) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "node", key)
	ctx = klog.NewContext(ctx, logger)
	n, err := c.nodes.Get(key)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		if _, held := c.slots.Get(key); held {
			// A deleted node is out of the pipeline for good.
			return c.releaseSlot(ctx, key)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if c.own.behind(n) {
		// The cache does not show our last write (or a take in flight)
		// to this node yet: a decision now would be refused (409); the
		// watch event of the write requeues the node.
		return nil
	}
	in := c.input(n)
	if in.Slot != nil && !decide.KeepsSlot(in) {
		// Out of the pipeline, if a version of the node later than the
		// one it was taken from shows it (an object read before the take
		// may be handled here while the take lands): give the slot back.
		released, err := c.releaseIfOut(ctx, n)
		if err != nil {
			return err
		}
		if released {
			in.Slot = nil
		}
	}
	state, _ := decide.StateOf(n)
	c.releasePods(ctx, state, &in)
	a := decide.Node(in)
	if a.Kind == decide.Drain {
		var ok bool
		if a, ok = c.drainAndDecide(ctx, n.Name, in, a); !ok {
			return nil
		}
	}
	c.endDrain(n.Name, state)
	// The lifecycle conditions of the state the node is in, before the
	// step that may leave it, so that every state it passes shows; the
	// step is then written on the version they produced (decisions never
	// read them).
	n, err = c.writeLifecycle(ctx, n, in, a)
	if err != nil {
		return err
	}
	return c.execute(ctx, n, a)
}

// releasePods gives the decision of a Rebooted node the readiness of its
// DaemonSet pods, from the node's pod watch (started here; its first list
// requeues the node), when the release gate reads them.
func (c *Controller) releasePods(ctx context.Context, state string, in *decide.Input) {
	if state != string(contract.StateRebooted) || !c.watchesReleasePods() {
		return
	}
	pods, ok := c.pods.Pods(ctx, in.Node.Name)
	in.Pods, in.PodsKnown = decide.DaemonSetPods(in.Node.Name, pods), ok
}

// endDrain forgets the drain of a node that is not (or no longer) draining.
// A drain that ends with a write ends here once the cache shows the write.
// The node's pods stay watched while the release gate will read them: from
// the drain through the reboot (Authorized) to the release (Rebooted), so
// that the gate reads the pods of a rebooted node from a watch that is
// already listed, instead of waiting for a new list on the release path.
func (c *Controller) endDrain(node, state string) {
	if state == string(contract.StateDraining) {
		return
	}
	c.drainer.Forget(node)
	if !c.keepsPodWatch(state) {
		c.pods.Stop(node)
	}
	c.setAuthBlock(node, nil)
}

// keepsPodWatch reports whether the pod watch of a node in state (not
// Draining) is kept: the release gate reads the DaemonSet pods and the node
// is on its way to the gate (Authorized) or at it (Rebooted). At most the
// nodes out (--max-concurrent) are watched, as while they drain.
func (c *Controller) keepsPodWatch(state string) bool {
	switch contract.State(state) {
	case contract.StateAuthorized, contract.StateRebooted:
		return c.watchesReleasePods()
	}
	return false
}

// drainAndDecide carries out a Drain decision: one drain pass, then the
// decision again with its outcome, and, when that authorizes, the gates
// again right before the authorization. false: nothing to write until the
// node is requeued (dry run, or its pod watch has not listed yet).
func (c *Controller) drainAndDecide(ctx context.Context, node string, in decide.Input, a decide.Action) (decide.Action, bool) {
	if c.cfg.DryRun {
		c.dryRunEvent(ctx, node, a)
		return a, false
	}
	pods, ok := c.pods.Pods(ctx, node)
	if !ok {
		// The watch's first list requeues the node.
		return a, false
	}
	st := c.drainer.Pass(ctx, node, pods)
	in.Drain = &st
	a = decide.Node(in)
	klog.FromContext(ctx).V(2).Info("Drain pass", "pending", st.Pending, "evicted", st.Evicted, "pods", st.Pods)
	if a.Kind == decide.Authorize {
		if in.Gate = c.authorizeGate(ctx, node, pods, in.Now); in.Gate != nil {
			a = decide.Node(in)
		}
		c.setAuthBlock(node, in.Gate)
	}
	return a, true
}

// watchesReleasePods reports whether the release gate reads the DaemonSet
// pods of rebooted nodes.
func (c *Controller) watchesReleasePods() bool {
	r := c.cfg.Decide.Release
	return r.DaemonSetPods && r.Timeout > 0
}

// stopDrain ends the node's pod watch and forgets its evictions.
func (c *Controller) stopDrain(node string) {
	c.pods.Stop(node)
	c.drainer.Forget(node)
}

// forget drops everything remembered about a deleted node.
func (c *Controller) forget(node string) {
	c.stopDrain(node)
	c.own.forget(node)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.queued, node)
	delete(c.warned, node)
	delete(c.dryRun, node)
	delete(c.podBlocks, node)
	delete(c.nodeBlocked, node)
	delete(c.authBlocks, node)
}

// input builds the decision input for a node: the node and its slot.
func (c *Controller) input(n *v1.Node) decide.Input {
	return decide.Input{Node: n, Config: &c.cfg.Decide, Now: c.clock.Now(), Slot: c.slotOf(n)}
}

// execute carries out an action on a node.
func (c *Controller) execute(ctx context.Context, n *v1.Node, a decide.Action) error {
	logger := klog.FromContext(ctx)
	switch a.Kind {
	case decide.Nothing:
		c.mu.Lock()
		delete(c.queued, n.Name)
		delete(c.warned, n.Name)
		delete(c.dryRun, n.Name)
		c.mu.Unlock()
		return nil
	case decide.Queue:
		c.admission.Add(admissionKey)
		if !a.Until.IsZero() {
			c.queue.AddAfter(n.Name, a.Until.Sub(c.clock.Now()))
		}
		return nil
	case decide.Wait:
		logger.V(4).Info("Waiting", "action", a.String())
		c.warnOnce(n.Name, a)
		if !a.Until.IsZero() {
			c.queue.AddAfter(n.Name, a.Until.Sub(c.clock.Now()))
		}
		return nil
	}
	if c.cfg.DryRun {
		c.dryRunEvent(ctx, n.Name, a)
		return nil
	}
	written, err := c.patch(ctx, n, a.Patch)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("%s node %s: %w", a.Kind, n.Name, err)
	}
	logger.Info("Node updated", "action", a.Kind, "message", a.Message)
	if in := c.input(written); in.Slot != nil && !decide.KeepsSlot(in) {
		if _, err := c.releaseIfOut(ctx, written); err != nil {
			return err
		}
	}
	c.wrote(n.Name, written)
	if a.Kind == decide.MarkRebooted {
		c.witness.controllerSaw(n.Name, written.Status.NodeInfo.BootID)
	}
	c.announceWritten(n.Name, a)
	return nil
}

// patch writes a decision's patch as a JSON merge patch, guarded by the
// resourceVersion the decision was made on.
func (c *Controller) patch(ctx context.Context, n *v1.Node, p *decide.Patch) (*v1.Node, error) {
	guarded := *p
	guarded.ResourceVersion = n.ResourceVersion
	data, err := guarded.MergePatch()
	if err != nil {
		return nil, err
	}
	return c.client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, data, metav1.PatchOptions{FieldManager: contract.ControllerComponent})
}
