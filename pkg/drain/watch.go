package drain

import (
	"context"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// PodWatches runs one pod informer per node being drained (or, for the
// controller's release gate, per rebooted node), restricted to that node's
// pods by a field selector on spec.nodeName. Every change of one of those
// pods, and the end of the initial list, calls OnChange with the node name,
// so that the controller looks at the node again. Only the nodes the caller
// asks for are watched: pods are never cached cluster-wide.
type PodWatches struct {
	client   kubernetes.Interface
	onChange func(node string)

	mu      sync.Mutex
	watches map[string]*podWatch
}

type podWatch struct {
	informer cache.SharedIndexInformer
	lister   corelisters.PodLister
	cancel   context.CancelFunc
	done     chan struct{}
}

// NewPodWatches returns an empty set of watches; onChange is called from the
// informers' goroutines.
func NewPodWatches(client kubernetes.Interface, onChange func(node string)) *PodWatches {
	return &PodWatches{client: client, onChange: onChange, watches: map[string]*podWatch{}}
}

// Pods returns the node's pods from its watch, starting the watch (under
// ctx) if it is not running. ok is false until the watch's initial list is
// done; OnChange is called when it is.
func (w *PodWatches) Pods(ctx context.Context, node string) (pods []*v1.Pod, ok bool) {
	w.mu.Lock()
	pw := w.watches[node]
	if pw == nil {
		pw = w.start(ctx, node)
		w.watches[node] = pw
	}
	w.mu.Unlock()
	if !pw.informer.HasSynced() {
		return nil, false
	}
	pods, err := pw.lister.List(labels.Everything())
	return pods, err == nil
}

func (w *PodWatches) start(ctx context.Context, node string) *podWatch {
	logger := klog.FromContext(ctx).WithValues("node", node)
	inf := coreinformers.NewFilteredPodInformer(w.client, metav1.NamespaceAll, 0, cache.Indexers{},
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
		})
	notify := func(any) { w.onChange(node) }
	reg, _ := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, n any) { notify(n) },
		DeleteFunc: notify,
	})
	wctx, cancel := context.WithCancel(ctx)
	pw := &podWatch{informer: inf, lister: corelisters.NewPodLister(inf.GetIndexer()), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(pw.done)
		inf.RunWithContext(wctx)
	}()
	go func() {
		// Signalled by the informer, not polled (WaitForCacheSync
		// looks every 100 ms, which the drain would wait for).
		checkers := []cache.DoneChecker{inf.HasSyncedChecker()}
		if reg != nil {
			checkers = append(checkers, reg.HasSyncedChecker())
		}
		if cache.WaitFor(wctx, "", checkers...) {
			w.onChange(node)
		}
	}()
	logger.V(2).Info("Watching pods of node")
	return pw
}

// Stop ends the node's watch, if any, and waits for it to stop.
func (w *PodWatches) Stop(node string) {
	w.mu.Lock()
	pw := w.watches[node]
	delete(w.watches, node)
	w.mu.Unlock()
	if pw != nil {
		pw.cancel()
		<-pw.done
	}
}

// Watching lists the nodes being watched.
func (w *PodWatches) Watching() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for n := range w.watches {
		names = append(names, n)
	}
	return names
}

// StopAll ends every watch.
func (w *PodWatches) StopAll() {
	for _, n := range w.Watching() {
		w.Stop(n)
	}
}
