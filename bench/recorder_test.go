package main

import (
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

func newTestRecorder() *recorder {
	return &recorder{nodes: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}),
		waiters: map[*waiter]struct{}{}, last: map[string]outPoint{}, gap: map[string]bool{}, changed: make(chan struct{})}
}

func node(name string, rv int, state string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: strconv.Itoa(rv), Annotations: map[string]string{}}}
	if state != "" {
		n.Annotations[contract.AnnotationState] = state
	}
	return n
}

// TestCheckOutCountsNodesOutBeforeTheStart: a node already out when the
// recorder lists the nodes counts.
func TestCheckOutCountsNodesOutBeforeTheStart(t *testing.T) {
	r := newTestRecorder()
	r.update(nil, node("a", 10, "Draining")) // in the initial list
	r.update(node("b", 5, ""), node("b", 11, "Draining"))
	err := r.checkOut(1)
	if err == nil || !strings.Contains(err.Error(), "[a b]") {
		t.Fatalf("checkOut(1) = %v, want an error naming a and b", err)
	}
	if r.maxNodesOut() != 2 {
		t.Errorf("max out %d, want 2", r.maxNodesOut())
	}
}

// TestCheckOutReplaysInResourceVersionOrder: a node leaving at an earlier
// resource version than another's take is no overlap, whatever order the
// events came in; a deleted node is no longer out.
func TestCheckOutReplaysInResourceVersionOrder(t *testing.T) {
	r := newTestRecorder()
	r.update(nil, node("a", 1, ""))
	r.update(nil, node("b", 2, ""))
	r.update(nil, node("c", 3, "Authorized"))
	r.update(node("a", 1, ""), node("a", 4, "Draining"))
	r.update(node("b", 2, ""), node("b", 7, "Draining")) // delivered before a's release
	r.update(node("a", 4, "Draining"), node("a", 6, ""))
	r.deleted(node("c", 5, "Authorized"))
	if err := r.checkOut(2); err != nil {
		t.Fatalf("checkOut(2): %v", err)
	}
	if err := r.checkOut(1); err == nil || !strings.Contains(err.Error(), "[a c]") {
		t.Fatalf("checkOut(1) = %v, want a and c named", err)
	}
}

// TestCheckOutAcrossAGap: after a relist, a node counts as out between its
// versions around the gap only if it was out at both.
func TestCheckOutAcrossAGap(t *testing.T) {
	r := newTestRecorder()
	r.update(nil, node("a", 1, "Draining"))
	r.update(nil, node("b", 2, ""))
	r.gap["a"], r.gap["b"] = true, true // the watch broke
	// Relisted: b was taken at 5; a is out at 9 as it was at 1.
	r.update(node("b", 2, ""), node("b", 5, "Draining"))
	r.update(node("a", 1, "Draining"), node("a", 9, "Draining"))
	if err := r.checkOut(1); err == nil {
		t.Fatal("a was out at both ends of the gap and b was taken in between: want a violation")
	}
	r2 := newTestRecorder()
	r2.update(nil, node("a", 1, "Draining"))
	r2.update(nil, node("b", 2, ""))
	r2.gap["a"], r2.gap["b"] = true, true
	r2.update(node("b", 2, ""), node("b", 5, "Draining"))
	r2.update(node("a", 1, "Draining"), node("a", 4, "")) // a left at 4, before b's take
	if err := r2.checkOut(1); err != nil {
		t.Fatalf("checkOut(1) = %v: a left before b was taken", err)
	}
}
