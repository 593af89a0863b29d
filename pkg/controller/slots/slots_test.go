package slots

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// casClient is a fake clientset whose ConfigMap updates are
// compare-and-swap on the resourceVersion, as the API server's are.
func casClient(t *testing.T) *fake.Clientset {
	c := fake.NewClientset()
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	rv := 0
	c.PrependReactor("create", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		cm := a.(k8stesting.CreateAction).GetObject().(*v1.ConfigMap).DeepCopy()
		rv++
		cm.ResourceVersion = strconv.Itoa(rv)
		return true, cm, c.Tracker().Create(gvr, cm, cm.Namespace)
	})
	c.PrependReactor("update", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		cm := a.(k8stesting.UpdateAction).GetObject().(*v1.ConfigMap).DeepCopy()
		cur, err := c.Tracker().Get(gvr, cm.Namespace, cm.Name)
		if err != nil {
			return true, nil, err
		}
		if cur.(*v1.ConfigMap).ResourceVersion != cm.ResourceVersion {
			return true, nil, apierrors.NewConflict(gvr.GroupResource(), cm.Name, errors.New("stale resourceVersion"))
		}
		rv++
		cm.ResourceVersion = strconv.Itoa(rv)
		return true, cm, c.Tracker().Update(gvr, cm, cm.Namespace)
	})
	return c
}

func record(t *testing.T, c *fake.Clientset) *v1.ConfigMap {
	t.Helper()
	cm, err := c.CoreV1().ConfigMaps("ns").Get(context.Background(), contract.SlotsConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func TestSlotRoundTrip(t *testing.T) {
	s := Slot{Term: 7, Since: t0}
	got, err := ParseSlot(s.String())
	if err != nil || got != s {
		t.Fatalf("ParseSlot(%q) = %v, %v", s.String(), got, err)
	}
	for _, bad := range []string{"", "7", "x/2026-12-01T10:00:00Z", "-1/2026-12-01T10:00:00Z", "7/yesterday"} {
		if _, err := ParseSlot(bad); err == nil {
			t.Errorf("ParseSlot(%q) accepted", bad)
		}
	}
}

func TestAcquireAdoptsOnlyWhenCreating(t *testing.T) {
	ctx := context.Background()
	c := casClient(t)
	a := New(c, "ns", "a")
	term, err := a.Acquire(ctx, t0, func() []string { return []string{"n1"} })
	if err != nil || term != 1 {
		t.Fatalf("first Acquire: term %d, %v", term, err)
	}
	if _, ok := a.Get("n1"); !ok {
		t.Fatal("the node out before the record existed was not adopted")
	}
	b := New(c, "ns", "b")
	term, err = b.Acquire(ctx, t0, func() []string { t.Fatal("adopt called on an existing record"); return nil })
	if err != nil || term != 2 {
		t.Fatalf("second Acquire: term %d, %v", term, err)
	}
	if got := record(t, c).Annotations[contract.AnnotationHolder]; got != "b" {
		t.Fatalf("holder %q, want b", got)
	}
}

// A deposed leader's write of the record is refused, and it learns that it
// is deposed; the new leader's record is untouched.
func TestDeposedLeaderCannotHold(t *testing.T) {
	ctx := context.Background()
	c := casClient(t)
	old := New(c, "ns", "old")
	if _, err := old.Acquire(ctx, t0, func() []string { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := old.Hold(ctx, "n1", t0); err != nil {
		t.Fatal(err)
	}
	next := New(c, "ns", "next")
	if _, err := next.Acquire(ctx, t0, nil); err != nil {
		t.Fatal(err)
	}
	if got := next.Nodes(); len(got) != 1 || got[0] != "n1" {
		t.Fatalf("the new leader sees slots %v, want [n1]", got)
	}
	if err := old.Hold(ctx, "n2", t0); !errors.Is(err, ErrDeposed) {
		t.Fatalf("the deposed leader's Hold: %v, want ErrDeposed", err)
	}
	if err := old.Release(ctx, "n1"); !errors.Is(err, ErrDeposed) {
		t.Fatalf("the deposed leader's Release: %v, want ErrDeposed", err)
	}
	if cm := record(t, c); len(cm.Data) != 1 || cm.Data["n1"] == "" {
		t.Fatalf("record after the deposed writes: %v", cm.Data)
	}
	if err := next.Hold(ctx, "n2", t0); err != nil {
		t.Fatal(err)
	}
	if err := next.Release(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if got := next.Nodes(); len(got) != 1 || got[0] != "n2" {
		t.Fatalf("slots %v, want [n2]", got)
	}
	s, _ := next.Get("n2")
	if s.Term != 2 || !s.Since.Equal(t0) {
		t.Fatalf("slot %v, want term 2 since %v", s, t0)
	}
}

// A write that conflicts with a write of the same term (a record read
// before an update of our own) is retried on the newer version.
func TestHoldRetriesOnItsOwnConflict(t *testing.T) {
	ctx := context.Background()
	c := casClient(t)
	r := New(c, "ns", "a")
	if _, err := r.Acquire(ctx, t0, func() []string { return nil }); err != nil {
		t.Fatal(err)
	}
	// Somebody (an operator) edits the record behind our back.
	cm := record(t, c)
	cm.Data = map[string]string{"n9": Slot{Term: 1, Since: t0}.String()}
	if _, err := c.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Hold(ctx, "n1", t0); err != nil {
		t.Fatal(err)
	}
	if got := r.Nodes(); len(got) != 2 {
		t.Fatalf("slots %v, want n1 and n9", got)
	}
}
