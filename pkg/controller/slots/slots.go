// Package slots keeps the slot record: the ConfigMap (contract.SlotsConfigMapName,
// in the controller's namespace) that names the nodes the controller put out.
//
// It is what makes --max-concurrent hold against any writer and across
// failovers:
//
//   - A node is added to the record, by compare-and-swap on the ConfigMap's
//     resourceVersion, before the controller takes it. A state annotation on
//     a node the record does not name was not written by the controller and
//     is never acted on.
//   - Each leader starts a new term: it bumps the term on the record (again
//     by compare-and-swap), then writes the term onto every node holding a
//     slot (Fence). From then on every write of a deposed leader is refused
//     by the API server: a write of the record by its resourceVersion
//     precondition, a write of a node by the node's, which the fence moved.
package slots

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// ErrDeposed is returned when the record shows another leader's term: this
// controller must stop writing.
var ErrDeposed = errors.New("the slot record names a newer leader term: deposed")

// Slot is one node's entry in the record.
type Slot struct {
	// Term is the leader term in which the node was taken.
	Term int64
	// Since is when it was taken.
	Since time.Time
}

// String renders a slot as stored: "<term>/<RFC 3339 time>".
func (s Slot) String() string {
	return strconv.FormatInt(s.Term, 10) + "/" + contract.FormatTime(s.Since)
}

// ParseSlot parses a stored slot.
func ParseSlot(v string) (Slot, error) {
	t, since, ok := strings.Cut(v, "/")
	if !ok {
		return Slot{}, fmt.Errorf("invalid slot %q: want <term>/<RFC 3339 time>", v)
	}
	term, err := strconv.ParseInt(t, 10, 64)
	if err != nil || term < 0 {
		return Slot{}, fmt.Errorf("invalid slot %q: bad term", v)
	}
	at, err := contract.ParseTime(since)
	if err != nil {
		return Slot{}, fmt.Errorf("invalid slot %q: %v", v, err)
	}
	return Slot{Term: term, Since: at}, nil
}

// Record is the controller's view of the slot record. Its methods are safe
// for concurrent use; each write is a compare-and-swap on the ConfigMap.
type Record struct {
	client    kubernetes.Interface
	namespace string
	identity  string

	mu    sync.Mutex
	cm    *v1.ConfigMap
	term  int64
	slots map[string]Slot
}

// New returns a record for the ConfigMap in namespace; identity names this
// controller (the leader election identity). Nothing is read until Acquire.
func New(client kubernetes.Interface, namespace, identity string) *Record {
	return &Record{client: client, namespace: namespace, identity: identity}
}

// Acquire starts a new term: it reads the record (creating it, with the
// nodes adopt returns, when there is none), bumps its term and names this
// controller its holder. adopt is called only when the record is created:
// it names the nodes that are out already (an install upgraded from a
// version without the record), so they keep their slots.
func (r *Record) Acquire(ctx context.Context, now time.Time, adopt func() []string) (term int64, err error) {
	cms := r.client.CoreV1().ConfigMaps(r.namespace)
	cm, err := cms.Get(ctx, contract.SlotsConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm = &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: contract.SlotsConfigMapName, Namespace: r.namespace,
			Labels: map[string]string{"app.kubernetes.io/name": "nodereboot", "app.kubernetes.io/component": "controller"},
			Annotations: map[string]string{
				contract.AnnotationTerm:   "0",
				contract.AnnotationHolder: r.identity,
			},
		}, Data: map[string]string{}}
		for _, n := range adopt() {
			cm.Data[n] = Slot{Term: 0, Since: now}.String()
		}
		cm, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: contract.ControllerComponent})
	}
	if err != nil {
		return 0, fmt.Errorf("slot record %s/%s: %w", r.namespace, contract.SlotsConfigMapName, err)
	}
	old, _ := strconv.ParseInt(cm.Annotations[contract.AnnotationTerm], 10, 64)
	next := cm.DeepCopy()
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[contract.AnnotationTerm] = strconv.FormatInt(old+1, 10)
	next.Annotations[contract.AnnotationHolder] = r.identity
	written, err := cms.Update(ctx, next, metav1.UpdateOptions{FieldManager: contract.ControllerComponent})
	if err != nil {
		return 0, fmt.Errorf("slot record %s/%s: start a term: %w", r.namespace, contract.SlotsConfigMapName, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.load(written)
	return r.term, nil
}

// load takes a written or read ConfigMap as the current record. Entries
// that do not parse are kept as slots of term 0 taken now: they count, and
// are released like any slot of an earlier term.
func (r *Record) load(cm *v1.ConfigMap) {
	r.cm = cm
	r.term, _ = strconv.ParseInt(cm.Annotations[contract.AnnotationTerm], 10, 64)
	r.slots = make(map[string]Slot, len(cm.Data))
	for node, v := range cm.Data {
		s, err := ParseSlot(v)
		if err != nil {
			s = Slot{}
		}
		r.slots[node] = s
	}
}

// Term is the current term (0 before Acquire).
func (r *Record) Term() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.term
}

// Get returns the node's slot, if it holds one.
func (r *Record) Get(node string) (Slot, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.slots[node]
	return s, ok
}

// Nodes returns the nodes holding a slot, sorted.
func (r *Record) Nodes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.slots))
}

// Hold adds the node to the record (a slot taken in this term, now). It
// must return before the node is taken.
func (r *Record) Hold(ctx context.Context, node string, now time.Time) error {
	return r.update(ctx, func(data map[string]string, term int64) bool {
		if _, ok := data[node]; ok {
			return false
		}
		data[node] = Slot{Term: term, Since: now}.String()
		return true
	})
}

// Release removes the node from the record. It must be called only once
// the node carries nothing that puts it out.
func (r *Record) Release(ctx context.Context, node string) error {
	return r.update(ctx, func(data map[string]string, _ int64) bool {
		if _, ok := data[node]; !ok {
			return false
		}
		delete(data, node)
		return true
	})
}

// update applies change to the record's data and writes it with the
// resourceVersion it was read at. On a conflict it reads the record again
// and retries if the term is still ours; a newer term is ErrDeposed.
func (r *Record) update(ctx context.Context, change func(data map[string]string, term int64) bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cm == nil {
		return errors.New("slot record not acquired")
	}
	cms := r.client.CoreV1().ConfigMaps(r.namespace)
	for attempt := 0; ; attempt++ {
		next := r.cm.DeepCopy()
		if next.Data == nil {
			next.Data = map[string]string{}
		}
		if !change(next.Data, r.term) {
			return nil
		}
		written, err := cms.Update(ctx, next, metav1.UpdateOptions{FieldManager: contract.ControllerComponent})
		if err == nil {
			r.load(written)
			return nil
		}
		if !apierrors.IsConflict(err) || attempt > 0 {
			return fmt.Errorf("slot record %s/%s: %w", r.namespace, contract.SlotsConfigMapName, err)
		}
		cur, gerr := cms.Get(ctx, contract.SlotsConfigMapName, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("slot record %s/%s: %w", r.namespace, contract.SlotsConfigMapName, gerr)
		}
		if t, _ := strconv.ParseInt(cur.Annotations[contract.AnnotationTerm], 10, 64); t != r.term || cur.Annotations[contract.AnnotationHolder] != r.identity {
			return fmt.Errorf("%w (term %d of %s, ours %d)", ErrDeposed, t, cur.Annotations[contract.AnnotationHolder], r.term)
		}
		r.load(cur)
	}
}
