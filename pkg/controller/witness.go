package controller

// The second witness of a reboot: the kubelet's own Rebooted event, held
// against the reboots the controller saw by boot ID
// (docs/gates.md#the-kubelets-rebooted-event-a-second-witness).

import (
	"context"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// Label values of nodereboot_reboot_witness_mismatch_total.
const (
	// WitnessKubeletEventMissing: the controller saw a node back with a
	// new boot ID after authorizing its reboot, and no kubelet Rebooted
	// event named that boot within the witness grace.
	WitnessKubeletEventMissing = "kubelet_event_missing"
	// WitnessUnexpectedReboot: the kubelet reported a reboot (a Rebooted
	// event naming a boot) that the controller did not see as the end of a
	// reboot it authorized within the witness grace: an out-of-band reboot,
	// a crash, or a reboot finished while no controller led.
	WitnessUnexpectedReboot = "unexpected_reboot"
)

// DefaultWitnessGrace is how long one witness waits for the other.
const DefaultWitnessGrace = 2 * time.Minute

// kubeletRebootedSelector selects the kubelet's Rebooted events about Nodes.
var kubeletRebootedSelector = fields.Set{"involvedObject.kind": "Node", "reason": "Rebooted", "source": "kubelet"}.AsSelector()

// kubeletBootPrefix precedes the boot ID in the kubelet's Rebooted message
// ("Node n1 has been rebooted, boot id: <id>").
const kubeletBootPrefix = "boot id: "

// nodeBoot is one boot of one node.
type nodeBoot struct{ node, boot string }

// witness matches the reboots the controller saw against the kubelet's
// Rebooted events; each side waits grace for the other, then counts a
// mismatch. Everything in memory: a new leader starts empty and ignores the
// events that were there before it.
type witness struct {
	clock    clock.WithTicker
	grace    time.Duration
	mismatch func(kind string)
	// schedule runs a function after a delay (after; tests replace it).
	schedule func(time.Duration, func())

	mu sync.Mutex
	// ours are the boots the controller saw, kubelet the boots the kubelet
	// reported, each waiting for the other; matched were matched (a
	// repeated event of a matched boot is no news), until they expire.
	ours, kubelet, matched map[nodeBoot]bool
}

func newWitness(clk clock.WithTicker, grace time.Duration, mismatch func(kind string)) *witness {
	if grace <= 0 {
		grace = DefaultWitnessGrace
	}
	w := &witness{clock: clk, grace: grace, mismatch: mismatch,
		ours: map[nodeBoot]bool{}, kubelet: map[nodeBoot]bool{}, matched: map[nodeBoot]bool{}}
	w.schedule = w.after
	return w
}

// controllerSaw records that the controller saw node back with boot after
// authorizing its reboot.
func (w *witness) controllerSaw(node, boot string) {
	w.saw(nodeBoot{node, boot}, w.ours, w.kubelet, WitnessKubeletEventMissing)
}

// kubeletSaw records a kubelet Rebooted event.
func (w *witness) kubeletSaw(e *v1.Event) {
	if e.InvolvedObject.Kind != "Node" || e.Reason != "Rebooted" || e.Source.Component != "kubelet" {
		return
	}
	i := strings.LastIndex(e.Message, kubeletBootPrefix)
	if i < 0 {
		return // not the kubelet's wording: nothing to hold against
	}
	boot := strings.TrimSpace(e.Message[i+len(kubeletBootPrefix):])
	w.saw(nodeBoot{e.InvolvedObject.Name, boot}, w.kubelet, w.ours, WitnessUnexpectedReboot)
}

// saw records k on one side (mine): it matches the other side (theirs), or
// waits grace for it and then counts kind.
func (w *witness) saw(k nodeBoot, mine, theirs map[nodeBoot]bool, kind string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.matched[k] || mine[k]:
		return
	case theirs[k]:
		delete(theirs, k)
		w.matched[k] = true
		w.schedule(time.Hour, func() { w.forget(w.matched, k) })
		return
	}
	mine[k] = true
	w.schedule(w.grace, func() {
		if w.forget(mine, k) {
			w.mismatch(kind)
		}
	})
}

// after runs f once d has passed on the witness's clock.
func (w *witness) after(d time.Duration, f func()) {
	t := w.clock.NewTimer(d)
	go func() {
		<-t.C()
		f()
	}()
}

// forget removes k from m and reports whether it was there.
func (w *witness) forget(m map[nodeBoot]bool, k nodeBoot) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := m[k]
	delete(m, k)
	return had
}

// run watches the kubelet's Rebooted events in namespace default (where
// events about Nodes land) until ctx ends. Events of the initial list
// happened before this controller led and are not counted. Without the
// right to list events the witness sees nothing and counts only
// kubelet_event_missing; the controller works on.
func (w *witness) run(ctx context.Context, client kubernetes.Interface) {
	inf := coreinformers.NewFilteredEventInformer(client, metav1.NamespaceDefault, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.FieldSelector = kubeletRebootedSelector.String() })
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if e, ok := obj.(*v1.Event); ok && !initial {
				w.kubeletSaw(e)
			}
		},
		UpdateFunc: func(_, obj any) {
			if e, ok := obj.(*v1.Event); ok {
				w.kubeletSaw(e)
			}
		},
	})
	inf.RunWithContext(ctx)
}
