package gates

import (
	"context"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

// MaxPausedReason caps the pause reason quoted in messages.
const MaxPausedReason = 512

// Paused reports whether a ConfigMap (contract.ConfigMapName) pauses the
// controller, and the reason it gives, cleaned by sanitize and capped at
// MaxPausedReason bytes (it ends up in events and notifications). A nil
// ConfigMap does not.
func Paused(cm *v1.ConfigMap) (paused bool, reason string) {
	if cm == nil || cm.Annotations[contract.AnnotationPaused] != "true" {
		return false, ""
	}
	return true, sanitize.Line(cm.Annotations[contract.AnnotationPausedReason], MaxPausedReason)
}

// PauseWatch watches the one ConfigMap that can pause the controller
// (contract.ConfigMapName in the controller's namespace), with an informer
// restricted to it by a field selector on metadata.name, so that RBAC can
// limit the controller to that ConfigMap (resourceNames).
type PauseWatch struct {
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
	lister   corelisters.ConfigMapNamespaceLister
}

// NewPauseWatch prepares the watch; onChange is called (from the
// informer's goroutine) on every change of the ConfigMap. Nothing runs
// before Start.
func NewPauseWatch(client kubernetes.Interface, namespace string, onChange func()) *PauseWatch {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", contract.ConfigMapName).String()
		}))
	inf := factory.Core().V1().ConfigMaps()
	notify := func(any) { onChange() }
	_, _ = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, n any) { notify(n) },
		DeleteFunc: notify,
	})
	return &PauseWatch{factory: factory, informer: inf.Informer(), lister: inf.Lister().ConfigMaps(namespace)}
}

// Start runs the informer until ctx ends; Shutdown waits for it.
func (p *PauseWatch) Start(ctx context.Context) { p.factory.Start(ctx.Done()) }

// Shutdown waits for the informer to stop (after ctx ended).
func (p *PauseWatch) Shutdown() { p.factory.Shutdown() }

// HasSynced reports whether the first list is done.
func (p *PauseWatch) HasSynced() bool { return p.informer.HasSynced() }

// WaitForSync waits, without polling, until the first list is done or ctx
// ends; it reports whether the list is done.
func (p *PauseWatch) WaitForSync(ctx context.Context) bool {
	return cache.WaitFor(ctx, "", p.informer.HasSyncedChecker())
}

// Paused reports whether the controller is paused now, and why.
func (p *PauseWatch) Paused() (bool, string) {
	cm, err := p.lister.Get(contract.ConfigMapName)
	if err != nil {
		return false, ""
	}
	return Paused(cm)
}
