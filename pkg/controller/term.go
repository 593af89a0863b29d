package controller

// The leader's term on the slot record (pkg/controller/slots): starting
// it, fencing the nodes that hold slots, holding and releasing slots.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
	"github.com/nodereboot/nodereboot/pkg/controller/slots"
)

// startTerm makes this controller the holder of the slot record for a new
// term, then fences every node holding a slot: it writes the term onto it,
// so that any write a deposed leader still has in flight to that node
// (guarded by an older resourceVersion) is refused by the API server. A
// deposed leader's write of the record is refused by the record's own
// resourceVersion. Nothing is decided before the fence is up.
func (c *Controller) startTerm(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if c.cfg.DryRun {
		return nil
	}
	adopt := func() []string {
		// First start with a record (an upgrade from a version
		// without it): the nodes already in the pipeline keep their
		// slots — at most --max-concurrent of them, the longest in
		// the pipeline first, so that even states forged before the
		// upgrade never put more nodes out than allowed. The others
		// are reset like any state the controller did not write.
		nodes, _ := c.nodes.List(labels.Everything())
		type stated struct {
			name  string
			since string
		}
		var out []stated
		for _, n := range nodes {
			if s, ok := decide.StateOf(n); ok {
				if st, err := contract.ParseState(s); err == nil && st.Active() {
					out = append(out, stated{n.Name, n.Annotations[contract.AnnotationStateSince]})
				}
			}
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].since != out[j].since {
				return out[i].since < out[j].since
			}
			return out[i].name < out[j].name
		})
		var names []string
		for i := 0; i < len(out) && i < c.cfg.Decide.MaxConcurrent; i++ {
			names = append(names, out[i].name)
		}
		return names
	}
	term, err := c.slots.Acquire(ctx, c.clock.Now(), adopt)
	if err != nil {
		return err
	}
	value := strconv.FormatInt(term, 10)
	patch, err := (&contract.Patch{Annotations: map[string]*string{contract.AnnotationTerm: &value}}).MergePatch()
	if err != nil {
		return err
	}
	for _, name := range c.slots.Nodes() {
		_, err := c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: contract.ControllerComponent})
		switch {
		case apierrors.IsNotFound(err):
			if err := c.slots.Release(ctx, name); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("fence node %s for term %d: %w", name, term, err)
		}
	}
	logger.Info("Slot record acquired", "term", term, "slots", c.slots.Nodes())
	return nil
}

// slotOf returns the node's slot in the record (nil: none). In dry-run
// mode nothing is recorded: a node that is marked counts as holding one.
func (c *Controller) slotOf(n *v1.Node) *decide.Slot {
	if c.cfg.DryRun {
		if decide.Marked(n) {
			return &decide.Slot{Since: n.CreationTimestamp.Time}
		}
		return nil
	}
	if s, ok := c.slots.Get(n.Name); ok {
		return &decide.Slot{Since: s.Since}
	}
	return nil
}

// holdSlot records the node in the slot record before it is taken.
func (c *Controller) holdSlot(ctx context.Context, node string) error {
	return c.slotWritten(c.slots.Hold(ctx, node, c.clock.Now()))
}

// releaseSlot removes the node from the slot record; it must carry nothing
// that puts it out (decide.KeepsSlot).
func (c *Controller) releaseSlot(ctx context.Context, node string) error {
	if c.cfg.DryRun {
		return nil
	}
	if err := c.slotWritten(c.slots.Release(ctx, node)); err != nil {
		return err
	}
	c.own.slotReleased(node)
	klog.FromContext(ctx).V(2).Info("Slot released", "node", node)
	c.admission.Add(admissionKey)
	return nil
}

// slotWritten stops the controller when a write of the slot record showed
// a newer leader: every further write would be refused anyway.
func (c *Controller) slotWritten(err error) error {
	if errors.Is(err, slots.ErrDeposed) && c.stop != nil {
		c.stop(err)
	}
	return err
}
