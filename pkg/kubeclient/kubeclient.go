package kubeclient

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// NewScheme is a scheme with core/v1 only (and the meta types every API
// group version carries).
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(corev1.AddToScheme(s))
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return s
}

// Client talks to the core/v1 API of one API server.
type Client struct {
	rest   rest.Interface
	scheme *runtime.Scheme
	params runtime.ParameterCodec
	// fieldManager names the client's writes in managedFields.
	fieldManager string
}

// New is a Client for cfg (its host, credentials, QPS and burst; the group
// version, API path and serializer are set here) whose writes are recorded
// under fieldManager.
func New(cfg *rest.Config, fieldManager string) (*Client, error) {
	s := NewScheme()
	c := rest.CopyConfig(cfg)
	gv := corev1.SchemeGroupVersion
	c.GroupVersion = &gv
	c.APIPath = "/api"
	c.NegotiatedSerializer = serializer.NewCodecFactory(s).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	return &Client{rest: rc, scheme: s, params: runtime.NewParameterCodec(s), fieldManager: fieldManager}, nil
}

// Scheme is the client's scheme (core/v1), for an event recorder.
func (c *Client) Scheme() *runtime.Scheme { return c.scheme }

func timeout(opts metav1.ListOptions) time.Duration {
	if opts.TimeoutSeconds != nil {
		return time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	return 0
}

// ListNodes lists nodes.
func (c *Client) ListNodes(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error) {
	result := &corev1.NodeList{}
	err := c.rest.Get().Resource("nodes").VersionedParams(&opts, c.params).Timeout(timeout(opts)).Do(ctx).Into(result)
	return result, err
}

// WatchNodes watches nodes.
func (c *Client) WatchNodes(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.rest.Get().Resource("nodes").VersionedParams(&opts, c.params).Timeout(timeout(opts)).Watch(ctx)
}

// NodeListWatch lists and watches the nodes that fieldSelector selects, for
// an informer.
func (c *Client) NodeListWatch(fieldSelector string) cache.ListerWatcher {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = fieldSelector
			return c.ListNodes(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = fieldSelector
			return c.WatchNodes(ctx, opts)
		},
	}
}

// PatchNode patches a node, or one of its subresources ("status").
func (c *Client) PatchNode(ctx context.Context, name string, pt types.PatchType, data []byte, subresources ...string) (*corev1.Node, error) {
	result := &corev1.Node{}
	err := c.rest.Patch(pt).Resource("nodes").Name(name).SubResource(subresources...).
		VersionedParams(&metav1.PatchOptions{FieldManager: c.fieldManager}, c.params).Body(data).Do(ctx).Into(result)
	return result, err
}

// EventSink writes events for a record.EventBroadcaster, each in its own
// namespace, with ctx.
func (c *Client) EventSink(ctx context.Context) record.EventSink {
	return &eventSink{client: c, ctx: ctx}
}

type eventSink struct {
	client *Client
	ctx    context.Context
}

// Create writes a new event.
func (s *eventSink) Create(e *corev1.Event) (*corev1.Event, error) {
	result := &corev1.Event{}
	err := s.client.rest.Post().Namespace(e.Namespace).Resource("events").Body(e).Do(s.ctx).Into(result)
	return result, err
}

// Update rewrites an event.
func (s *eventSink) Update(e *corev1.Event) (*corev1.Event, error) {
	result := &corev1.Event{}
	err := s.client.rest.Put().Namespace(e.Namespace).Resource("events").Name(e.Name).Body(e).Do(s.ctx).Into(result)
	return result, err
}

// Patch updates an event (the count of an aggregated one).
func (s *eventSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	result := &corev1.Event{}
	err := s.client.rest.Patch(types.StrategicMergePatchType).Namespace(e.Namespace).Resource("events").Name(e.Name).Body(data).Do(s.ctx).Into(result)
	return result, err
}
