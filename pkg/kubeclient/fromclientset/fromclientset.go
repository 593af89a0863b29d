// Package fromclientset adapts a client-go clientset (in unit tests, the
// fake one) to the detector's narrow client (kubeclient.Client's methods).
// The detector binary does not use it: it would link the whole clientset
// again.
package fromclientset

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Client is a clientset seen through the detector's client methods.
type Client struct {
	clientset kubernetes.Interface
}

// New adapts cs.
func New(cs kubernetes.Interface) *Client { return &Client{clientset: cs} }

// Scheme is client-go's scheme.
func (c *Client) Scheme() *runtime.Scheme { return scheme.Scheme }

// NodeListWatch lists and watches the nodes that fieldSelector selects.
// The reflector learns whether the clientset supports streaming lists (the
// fake one does not).
func (c *Client) NodeListWatch(fieldSelector string) cache.ListerWatcher {
	nodes := c.clientset.CoreV1().Nodes()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = fieldSelector
			return nodes.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = fieldSelector
			return nodes.Watch(ctx, opts)
		},
	}
	return cache.ToListWatcherWithWatchListSemantics(lw, c.clientset)
}

// PatchNode patches a node or one of its subresources.
func (c *Client) PatchNode(ctx context.Context, name string, pt types.PatchType, data []byte, subresources ...string) (*corev1.Node, error) {
	return c.clientset.CoreV1().Nodes().Patch(ctx, name, pt, data, metav1.PatchOptions{}, subresources...)
}

// EventSink writes events through the clientset.
func (c *Client) EventSink(context.Context) record.EventSink {
	return &typedcorev1.EventSinkImpl{Interface: c.clientset.CoreV1().Events("")}
}
