package drain

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	policylisters "k8s.io/client-go/listers/policy/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
)

func webPDB(rv string, allowed int32) *policyv1.PodDisruptionBudget {
	maxUnavailable := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", ResourceVersion: rv},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &maxUnavailable, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed, CurrentHealthy: 3, DesiredHealthy: 2, ExpectedPods: 3},
	}
}

// budgetRig is a Drainer whose budget lister is an indexer the test
// changes, with BudgetHandler's requeues recorded.
type budgetRig struct {
	d        *Drainer
	ev       *evictions
	idx      cache.Indexer
	clk      *clocktesting.FakeClock
	handler  cache.ResourceEventHandler
	requeued []string
	attempts int
}

func newBudgetRig(t *testing.T, pdb *policyv1.PodDisruptionBudget) *budgetRig {
	t.Helper()
	r := &budgetRig{}
	d, _, ev, _, clk := setup(t, Options{GracePeriodSeconds: -1, RetryDelay: 5 * time.Second, MinRetrySpacing: 250 * time.Millisecond,
		OnEviction: func(string) { r.attempts++ }}, tooManyRequests)
	r.idx = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := r.idx.Add(pdb); err != nil {
		t.Fatal(err)
	}
	d.pdbs = policylisters.NewPodDisruptionBudgetLister(r.idx)
	r.d, r.ev, r.clk = d, ev, clk
	r.handler = d.BudgetHandler(func(n string) { r.requeued = append(r.requeued, n) })
	return r
}

// status changes the cached budget and delivers the event, as an informer
// does (cache first, then the handlers).
func (r *budgetRig) status(t *testing.T, rv string, allowed int32) {
	t.Helper()
	old, _, _ := r.idx.GetByKey("default/web")
	n := webPDB(rv, allowed)
	if err := r.idx.Update(n); err != nil {
		t.Fatal(err)
	}
	r.handler.OnUpdate(old, n)
}

// TestRefusalRetriedWhenTheBudgetAllowsIt: a pod refused by its budget is
// evicted again as soon as the budget's status allows a disruption, not
// after --eviction-retry-delay; the node is requeued by the budget's event.
func TestRefusalRetriedWhenTheBudgetAllowsIt(t *testing.T) {
	r := newBudgetRig(t, webPDB("10", 0))
	ctx := context.Background()
	pods := []*v1.Pod{pod("web-1")}
	st := r.d.Pass(ctx, nodeName, pods)
	if r.attempts != 1 || !st.RetryAt.Equal(r.clk.Now().Add(5*time.Second)) {
		t.Fatalf("first pass: %d attempts, retry at %v; want 1 and the 5s fallback", r.attempts, st.RetryAt)
	}
	// Changes that do not allow a disruption, or are no change, wake
	// nothing.
	r.status(t, "11", 0)
	r.handler.OnUpdate(webPDB("11", 0), webPDB("11", 0))
	if len(r.requeued) != 0 {
		t.Fatalf("requeued %v on changes that allow nothing", r.requeued)
	}
	r.clk.Step(time.Second)
	r.status(t, "12", 1) // the replacement became ready elsewhere
	if len(r.requeued) != 1 || r.requeued[0] != nodeName {
		t.Fatalf("requeued %v, want [%s]", r.requeued, nodeName)
	}
	r.ev.respond = nil
	st = r.d.Pass(ctx, nodeName, pods)
	if r.attempts != 2 || st.Evicted != 1 {
		t.Fatalf("after the budget allowed it: %d attempts, status %+v; want the eviction sent and accepted 1s after the refusal", r.attempts, st)
	}
	// The pod is settled: later budget events wake nothing.
	r.status(t, "13", 2)
	if len(r.requeued) != 1 {
		t.Errorf("requeued %v after the pod was evicted", r.requeued)
	}
}

// TestFlappingBudgetIsNoHotLoop: however often the budget changes, a pod
// gets at most one attempt per change, never two within the minimum
// spacing.
func TestFlappingBudgetIsNoHotLoop(t *testing.T) {
	r := newBudgetRig(t, webPDB("10", 0))
	ctx := context.Background()
	pods := []*v1.Pod{pod("web-1")}
	r.d.Pass(ctx, nodeName, pods)
	start := r.clk.Now()
	// 20 status changes within 100 ms, each followed by a sync of the
	// node (every requeue does one).
	for i := range 20 {
		r.clk.Step(5 * time.Millisecond)
		r.status(t, "rv"+string(rune('a'+i)), int32(1+i%2))
		st := r.d.Pass(ctx, nodeName, pods)
		if r.attempts > 1 {
			t.Fatalf("attempt %d at +%s: within the minimum spacing", r.attempts, r.clk.Since(start))
		}
		if want := start.Add(250 * time.Millisecond); !st.RetryAt.Equal(want) {
			t.Fatalf("retry at %v, want the spacing's end %v", st.RetryAt, want)
		}
	}
	r.clk.SetTime(start.Add(250 * time.Millisecond))
	r.d.Pass(ctx, nodeName, pods)
	r.d.Pass(ctx, nodeName, pods)
	if r.attempts != 2 {
		t.Fatalf("%d attempts at the end of the spacing, want 2 (one for all the changes)", r.attempts)
	}
	// Refused again; no new change: nothing until the fallback.
	r.clk.Step(time.Second)
	if st := r.d.Pass(ctx, nodeName, pods); r.attempts != 2 || !st.RetryAt.Equal(start.Add(250*time.Millisecond+5*time.Second)) {
		t.Fatalf("%d attempts, retry %v: without a change, the fallback delay", r.attempts, st.RetryAt)
	}
	// The same version delivered again (a resync) is not a change.
	r.handler.OnUpdate(webPDB("x", 0), webPDB("rvt", 2))
	if st := r.d.Pass(ctx, nodeName, pods); r.attempts != 2 {
		t.Fatalf("%d attempts after a replayed version (retry %v)", r.attempts, st.RetryAt)
	}
	// A new change: one more attempt.
	r.status(t, "next", 1)
	r.d.Pass(ctx, nodeName, pods)
	r.d.Pass(ctx, nodeName, pods)
	if r.attempts != 3 {
		t.Fatalf("%d attempts after a new change, want 3", r.attempts)
	}
}

// TestChangeDuringTheRequest: a budget status that changed while the
// refused request was on the wire (its event handled before the refusal
// was recorded) is not lost: the pod is due after the minimum spacing.
func TestChangeDuringTheRequest(t *testing.T) {
	r := newBudgetRig(t, webPDB("10", 0))
	r.ev.respond = func(string) error {
		r.status(t, "11", 1)
		return tooManyRequests("")
	}
	st := r.d.Pass(context.Background(), nodeName, []*v1.Pod{pod("web-1")})
	if want := r.clk.Now().Add(250 * time.Millisecond); !st.RetryAt.Equal(want) {
		t.Fatalf("retry at %v, want %v (the change seen during the request)", st.RetryAt, want)
	}
}

// TestOtherBudgetsWakeNothing: a budget that blocks no pod of a draining
// node requeues nothing; a node forgotten is not woken.
func TestOtherBudgetsWakeNothing(t *testing.T) {
	r := newBudgetRig(t, webPDB("10", 0))
	r.d.Pass(context.Background(), nodeName, []*v1.Pod{pod("web-1")})
	db := webPDB("5", 0)
	db.Name = "db"
	r.handler.OnUpdate(db, func() *policyv1.PodDisruptionBudget { n := webPDB("6", 3); n.Name = "db"; return n }())
	r.d.Forget(nodeName)
	r.status(t, "11", 1)
	if len(r.requeued) != 0 {
		t.Fatalf("requeued %v", r.requeued)
	}
}

// TestBudgetDeletedWakes: the deletion of the budget that blocked a pod
// makes it due.
func TestBudgetDeletedWakes(t *testing.T) {
	r := newBudgetRig(t, webPDB("10", 0))
	r.d.Pass(context.Background(), nodeName, []*v1.Pod{pod("web-1")})
	r.handler.OnDelete(cache.DeletedFinalStateUnknown{Key: "default/web", Obj: webPDB("10", 0)})
	if len(r.requeued) != 1 {
		t.Fatalf("requeued %v, want the node", r.requeued)
	}
}

// TestBudgetHandlerOnAnInformer: the handler on a real shared informer
// (fake clientset) requeues the node when the budget's status is updated
// through the API.
func TestBudgetHandlerOnAnInformer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The fake tracker does not set resourceVersions; the API server does.
	client := fake.NewClientset(webPDB("1", 0))
	factory := informers.NewSharedInformerFactory(client, 0)
	inf := factory.Policy().V1().PodDisruptionBudgets()
	d := New(client, inf.Lister(), record.NewFakeRecorder(10), clocktesting.NewFakeClock(time.Now()), Options{RetryDelay: time.Hour})
	requeued := make(chan string, 10)
	if _, err := inf.Informer().AddEventHandler(d.BudgetHandler(func(n string) { requeued <- n })); err != nil {
		t.Fatal(err)
	}
	client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, tooManyRequests("")
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	if st := d.Pass(ctx, nodeName, []*v1.Pod{pod("web-1")}); st.Pending != 1 {
		t.Fatalf("status %+v", st)
	}
	pdb := webPDB("2", 1)
	pdb.Status.ObservedGeneration = 1
	if _, err := client.PolicyV1().PodDisruptionBudgets("default").UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-requeued:
		if n != nodeName {
			t.Fatalf("requeued %s", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the budget's status update did not requeue the node")
	}
}

// TestFailedEvictionRetriedOnTheBudget: an eviction that failed (here: a
// timeout, as when the API server's budget update keeps conflicting) is
// tried again on the next status change of the pod's budget, not only
// after RetryDelay.
func TestFailedEvictionRetriedOnTheBudget(t *testing.T) {
	r := newBudgetRig(t, webPDB("10", 0))
	r.ev.respond = func(string) error { return context.DeadlineExceeded }
	ctx := context.Background()
	pods := []*v1.Pod{pod("web-1")}
	if st := r.d.Pass(ctx, nodeName, pods); !st.RetryAt.Equal(r.clk.Now().Add(5 * time.Second)) {
		t.Fatalf("retry at %v, want the 5s fallback", st.RetryAt)
	}
	r.clk.Step(time.Second)
	r.status(t, "11", 1)
	if len(r.requeued) != 1 {
		t.Fatalf("requeued %v, want the node", r.requeued)
	}
	r.ev.respond = nil
	if st := r.d.Pass(ctx, nodeName, pods); r.attempts != 2 || st.Evicted != 1 {
		t.Fatalf("%d attempts, status %+v: want the pod evicted on the budget's change", r.attempts, st)
	}
}

// TestOneEvictionAtATimePerBudget: while an eviction under a budget is on
// the wire for one node, another node's pod under the same budget is not
// sent (the API server would make the loser of their race on the budget's
// status sleep 500 ms); that node is requeued when the turn frees, and its
// pod is evicted on the next pass.
func TestOneEvictionAtATimePerBudget(t *testing.T) {
	r := newBudgetRig(t, webPDB("10", 5))
	r.ev.respond = nil
	ctx := context.Background()
	release, _, ok := r.d.turns.tryTake(holding(r.clk.Now(), "other-node", "default/web")) // another node's eviction in flight
	if !ok {
		t.Fatal("turn not given")
	}
	pods := []*v1.Pod{pod("web-1")}
	st := r.d.Pass(ctx, nodeName, pods)
	if r.attempts != 0 || st.Pending != 1 || st.Evicted != 0 {
		t.Fatalf("while the budget's turn is taken: %d attempts, status %+v; want none sent, 1 pending", r.attempts, st)
	}
	if !st.RetryAt.Equal(r.clk.Now().Add(5 * time.Second)) {
		t.Errorf("retry at %v, want the RetryDelay fallback (nobody changed the budget: the turn does not lapse)", st.RetryAt)
	}
	release()
	if len(r.requeued) != 1 || r.requeued[0] != nodeName {
		t.Fatalf("requeued %v when the turn freed, want [%s]", r.requeued, nodeName)
	}
	st = r.d.Pass(ctx, nodeName, pods)
	if r.attempts != 1 || st.Evicted != 1 {
		t.Fatalf("after the turn freed: %d attempts, status %+v; want the eviction sent and accepted", r.attempts, st)
	}
	// The node's own pass gave its turn back.
	if release, _, ok := r.d.turns.tryTake(holding(r.clk.Now(), "other-node", "default/web")); !ok {
		t.Fatal("turn still held after the pass")
	} else {
		release()
	}
}

// TestTurnFreedByTheBudgetsRecord: another node's eviction under the budget
// is on the wire; the budget's informer delivers a status that names its pod
// as disrupted (the API server updated the budget and only deletes the pod
// now): the waiting node is requeued and its pod evicted at once, before
// the other request is answered.
func TestTurnFreedByTheBudgetsRecord(t *testing.T) {
	r := newBudgetRig(t, webPDB("10", 5))
	r.ev.respond = nil
	ctx := context.Background()
	release, _, ok := r.d.turns.tryTake(&turn{node: "other-node", pod: "web-other", since: r.clk.Now(),
		versions: map[string]string{"default/web": "10"}, listed: map[string]bool{}})
	if !ok {
		t.Fatal("turn not given")
	}
	defer release()
	pods := []*v1.Pod{pod("web-1")}
	if st := r.d.Pass(ctx, nodeName, pods); r.attempts != 0 || st.Pending != 1 {
		t.Fatalf("while the budget's turn is taken: %d attempts, status %+v", r.attempts, st)
	}
	old, _, _ := r.idx.GetByKey("default/web")
	n := webPDB("11", 4)
	n.Status.DisruptedPods = map[string]metav1.Time{"web-other": metav1.NewTime(r.clk.Now())}
	if err := r.idx.Update(n); err != nil {
		t.Fatal(err)
	}
	r.handler.OnUpdate(old, n)
	if len(r.requeued) != 1 || r.requeued[0] != nodeName {
		t.Fatalf("requeued %v when the budget recorded the other eviction, want [%s]", r.requeued, nodeName)
	}
	if st := r.d.Pass(ctx, nodeName, pods); r.attempts != 1 || st.Evicted != 1 {
		t.Fatalf("after the record: %d attempts, status %+v; want the eviction sent and accepted", r.attempts, st)
	}
}
