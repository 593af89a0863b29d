package framework

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// RelistingNodeListWatch lists and watches the Nodes for an informer and
// calls relisted whenever the informer lists again after its first list. A
// relist means the watch could not resume where it stopped (its resource
// version expired, or the API server came back with a fresh watch cache),
// so the versions in between are lost; client-go relists after an expired
// watch without calling its watch error handler, so the list itself is the
// only exact sign. A streaming list (WatchList) is a relist too. The first
// list is no gap: there is no history yet. relisted runs on the informer's
// goroutine, before the list is made.
func RelistingNodeListWatch(client kubernetes.Interface, relisted func()) *cache.ListWatch {
	nodes := client.CoreV1().Nodes()
	lists := 0
	list := func() {
		if lists++; lists > 1 {
			relisted()
		}
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			list()
			return nodes.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
				list()
			}
			return nodes.Watch(ctx, opts)
		},
	}
}
