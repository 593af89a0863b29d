package controller

// The lifecycle conditions' write (decide.Lifecycle decides them): one
// strategic-merge patch of nodes/status, only when the node shows something
// else.

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

// writeLifecycle writes the lifecycle conditions the node should show and
// does not (decide.Lifecycle) on nodes/status: a strategic-merge patch of
// status.conditions (merged by type, as node-problem-detector writes its
// conditions) guarded by the resourceVersion the decision was made on. A
// node that shows them costs no request. It returns the node as written
// (n when nothing was).
func (c *Controller) writeLifecycle(ctx context.Context, n *v1.Node, in decide.Input, a decide.Action) (*v1.Node, error) {
	cs := decide.Lifecycle(in, a)
	if len(cs) == 0 || c.cfg.DryRun {
		return n, nil
	}
	data, err := contract.ConditionsPatch(cs, n.ResourceVersion)
	if err != nil {
		return nil, err
	}
	written, err := c.client.CoreV1().Nodes().Patch(ctx, n.Name, types.StrategicMergePatchType, data, metav1.PatchOptions{FieldManager: contract.ControllerComponent}, "status")
	switch {
	case apierrors.IsNotFound(err):
		return n, nil
	case apierrors.IsForbidden(err):
		// Not retried on its own: RBAC (nodes/status patch) or the
		// admission policy refuses it, and the node's next change tries
		// again. The pipeline does not depend on it.
		klog.FromContext(ctx).Error(err, "Cannot write the lifecycle conditions (RBAC: patch nodes/status; or --lifecycle-conditions=false)")
		return n, nil
	case err != nil:
		return nil, fmt.Errorf("lifecycle conditions of node %s: %w", n.Name, err)
	}
	c.wrote(n.Name, written)
	klog.FromContext(ctx).V(2).Info("Lifecycle conditions written", "conditions", lifecycleSummary(cs))
	return written, nil
}

func lifecycleSummary(cs []v1.NodeCondition) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, string(c.Type)+"="+string(c.Status)+"/"+c.Reason)
	}
	return out
}
