package drain

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

const nodeName = "n1"

type podOpt func(*v1.Pod)

func pod(name string, opts ...podOpt) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: ktypes.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec:       v1.PodSpec{NodeName: nodeName},
		Status:     v1.PodStatus{Phase: v1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func ownedBy(kind, apiVersion string) podOpt {
	return func(p *v1.Pod) {
		t := true
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, APIVersion: apiVersion, Name: "o", Controller: &t}}
	}
}
func phase(ph v1.PodPhase) podOpt { return func(p *v1.Pod) { p.Status.Phase = ph } }
func mirror(p *v1.Pod)            { p.Annotations = map[string]string{v1.MirrorPodAnnotationKey: "x"} }
func emptyDir(p *v1.Pod) {
	p.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
}
func terminating(p *v1.Pod)  { now := metav1.Now(); p.DeletionTimestamp = &now }
func onNode(n string) podOpt { return func(p *v1.Pod) { p.Spec.NodeName = n } }

// evictions records eviction requests and answers them with respond.
type evictions struct {
	got     []*policyv1.Eviction
	respond func(name string) error
}

func setup(t *testing.T, opts Options, respond func(name string) error, pdbs ...*policyv1.PodDisruptionBudget) (*Drainer, *fake.Clientset, *evictions, *record.FakeRecorder, *clocktesting.FakeClock) {
	t.Helper()
	client := fake.NewClientset()
	ev := &evictions{respond: respond}
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca := a.(k8stesting.CreateAction)
		if ca.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		e := ca.GetObject().(*policyv1.Eviction)
		ev.got = append(ev.got, e)
		if ev.respond == nil {
			return true, nil, nil
		}
		return true, nil, ev.respond(e.Name)
	})
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range pdbs {
		if err := idx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	rec := record.NewFakeRecorder(100)
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC))
	if opts.RetryDelay == 0 {
		opts.RetryDelay = 5 * time.Second
	}
	return New(client, policylisters.NewPodDisruptionBudgetLister(idx), rec, clk, opts), client, ev, rec, clk
}

func noDeletes(t *testing.T, c *fake.Clientset) {
	t.Helper()
	for _, a := range c.Actions() {
		if a.GetVerb() == "delete" || a.GetVerb() == "deletecollection" {
			t.Errorf("the drain sent a %s %s: it must only evict", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

func tooManyRequests(string) error {
	return apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
}

func events(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestPassEvictsOnlyWhatMustGo(t *testing.T) {
	d, client, ev, _, _ := setup(t, Options{GracePeriodSeconds: -1, DeleteEmptyDirData: true}, nil)
	pods := []*v1.Pod{
		pod("web-1", ownedBy("ReplicaSet", "apps/v1")),
		pod("bare"),
		pod("ds", ownedBy("DaemonSet", "apps/v1")),
		pod("static", mirror),
		pod("done", phase(v1.PodSucceeded)),
		pod("crashed", phase(v1.PodFailed)),
		pod("scratch", emptyDir),
		pod("going", terminating),
		pod("elsewhere", onNode("n2")),
	}
	st := d.Pass(context.Background(), nodeName, pods)
	var names []string
	for _, e := range ev.got {
		names = append(names, e.Name)
		if e.DeleteOptions == nil || e.DeleteOptions.GracePeriodSeconds != nil {
			t.Errorf("eviction of %s: grace period set with --drain-grace-period=-1: %+v", e.Name, e.DeleteOptions)
		}
		if e.DeleteOptions.Preconditions == nil || string(*e.DeleteOptions.Preconditions.UID) != "uid-"+e.Name {
			t.Errorf("eviction of %s without the pod's UID precondition", e.Name)
		}
	}
	if got, want := strings.Join(names, ","), "bare,scratch,web-1"; got != want {
		t.Errorf("evicted %s, want %s", got, want)
	}
	if st.Pending != 4 || st.Evicted != 3 || !st.RetryAt.IsZero() {
		t.Errorf("status = %+v, want 4 pending (3 evicted + 1 terminating), no retry", st)
	}
	noDeletes(t, client)
}

func TestPassGracePeriod(t *testing.T) {
	d, _, ev, _, _ := setup(t, Options{GracePeriodSeconds: 30}, nil)
	d.Pass(context.Background(), nodeName, []*v1.Pod{pod("a")})
	if len(ev.got) != 1 || ev.got[0].DeleteOptions.GracePeriodSeconds == nil || *ev.got[0].DeleteOptions.GracePeriodSeconds != 30 {
		t.Fatalf("eviction without grace period 30: %+v", ev.got)
	}
}

func TestPassEmptyDirWithoutPermission(t *testing.T) {
	d, _, ev, _, _ := setup(t, Options{GracePeriodSeconds: -1, DeleteEmptyDirData: false}, nil)
	st := d.Pass(context.Background(), nodeName, []*v1.Pod{pod("scratch", emptyDir)})
	if len(ev.got) != 0 {
		t.Fatalf("evicted a pod with emptyDir data without --delete-emptydir-data")
	}
	if st.Pending != 1 || len(st.Pods) != 1 || !strings.Contains(st.Pods[0], "emptyDir") {
		t.Fatalf("status = %+v, want the pod pending for its emptyDir", st)
	}
}

func TestPassPDBRefusalIsRetriedAfterTheDelay(t *testing.T) {
	minAvail := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-pdb"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvail, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
	other := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-pdb"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}},
	}
	var results []string
	d, client, ev, rec, clk := setup(t, Options{GracePeriodSeconds: -1, RetryDelay: 5 * time.Second,
		OnEviction: func(r string) { results = append(results, r) }}, tooManyRequests, pdb, other)
	pods := []*v1.Pod{pod("web-1")}
	ctx := context.Background()

	st := d.Pass(ctx, nodeName, pods)
	start := clk.Now()
	if len(ev.got) != 1 {
		t.Fatalf("%d evictions, want 1", len(ev.got))
	}
	if st.Pending != 1 || !st.RetryAt.Equal(start.Add(5*time.Second)) {
		t.Fatalf("status = %+v, want 1 pending and a retry at +5s", st)
	}
	if len(st.Pods) != 1 || !strings.Contains(st.Pods[0], "default/web-1") || !strings.Contains(st.Pods[0], "default/web-pdb") ||
		strings.Contains(st.Pods[0], "db-pdb") {
		t.Errorf("pending pods %v: want web-1 blocked by web-pdb only", st.Pods)
	}
	evs := events(rec)
	if len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning "+contract.ReasonEvictionBlocked) ||
		!strings.Contains(evs[0], "default/web-1") || !strings.Contains(evs[0], "default/web-pdb") {
		t.Fatalf("events %q: want one EvictionBlocked naming the pod and the PDB", evs)
	}

	// Before the delay: no new request, however often the node is synced.
	for range 5 {
		clk.Step(time.Second - time.Millisecond)
		st = d.Pass(ctx, nodeName, pods)
		if !st.RetryAt.Equal(start.Add(5 * time.Second)) {
			t.Fatalf("retry moved to %v", st.RetryAt)
		}
	}
	if len(ev.got) != 1 {
		t.Fatalf("%d evictions before the retry delay passed: a hot loop", len(ev.got))
	}
	// After the delay: retried once, still refused: one more request, no
	// second identical event.
	clk.Step(5 * time.Millisecond)
	st = d.Pass(ctx, nodeName, pods)
	if len(ev.got) != 2 {
		t.Fatalf("%d evictions after the retry delay, want 2", len(ev.got))
	}
	if !st.RetryAt.Equal(clk.Now().Add(5 * time.Second)) {
		t.Errorf("next retry %v, want now+5s", st.RetryAt)
	}
	if evs := events(rec); len(evs) != 0 {
		t.Errorf("repeated event for the same refusal: %q", evs)
	}
	// The budget allows it now.
	ev.respond = nil
	clk.Step(5 * time.Second)
	st = d.Pass(ctx, nodeName, pods)
	if len(ev.got) != 3 || st.Evicted != 1 || !st.RetryAt.IsZero() {
		t.Fatalf("after the budget allowed it: %d evictions, status %+v", len(ev.got), st)
	}
	if got := strings.Join(results, ","); got != "blocked,blocked,evicted" {
		t.Errorf("eviction results %s", got)
	}
	noDeletes(t, client)
}

func TestPassGoneAndErrors(t *testing.T) {
	d, client, ev, _, clk := setup(t, Options{GracePeriodSeconds: -1}, func(name string) error {
		if name == "gone" {
			return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name)
		}
		return apierrors.NewInternalError(errFake)
	})
	st := d.Pass(context.Background(), nodeName, []*v1.Pod{pod("gone"), pod("broken")})
	if len(ev.got) != 2 {
		t.Fatalf("%d evictions", len(ev.got))
	}
	if st.Pending != 1 || !st.RetryAt.Equal(clk.Now().Add(5*time.Second)) || !strings.Contains(st.Pods[0], "eviction error") {
		t.Fatalf("status = %+v: want broken pending with a retry, gone not pending", st)
	}
	noDeletes(t, client)
}

var errFake = &fakeErr{}

type fakeErr struct{}

func (*fakeErr) Error() string { return "etcd is sad" }

func TestForgetResetsRetries(t *testing.T) {
	d, _, ev, _, _ := setup(t, Options{GracePeriodSeconds: -1}, tooManyRequests)
	pods := []*v1.Pod{pod("web-1")}
	d.Pass(context.Background(), nodeName, pods)
	d.Forget(nodeName)
	d.Pass(context.Background(), nodeName, pods)
	if len(ev.got) != 2 {
		t.Fatalf("%d evictions: a new drain must start afresh", len(ev.got))
	}
}

func TestPassListsAtMostMaxListed(t *testing.T) {
	d, _, _, _, _ := setup(t, Options{GracePeriodSeconds: -1, MaxListed: 2}, nil)
	st := d.Pass(context.Background(), nodeName, []*v1.Pod{pod("a", terminating), pod("b", terminating), pod("c", terminating)})
	if st.Pending != 3 || len(st.Pods) != 3 || st.Pods[2] != "and 1 more" {
		t.Fatalf("status = %+v", st)
	}
}

func TestPodWatchesRequeueOnPodChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(pod("web-1"), pod("other", onNode("n2")))
	changes := make(chan string, 100)
	w := NewPodWatches(client, func(n string) { changes <- n })
	defer w.StopAll()

	if _, ok := w.Pods(ctx, nodeName); ok {
		// The fake's list may be instant; both outcomes are fine, but
		// the sync must be announced.
		t.Log("synced at once")
	}
	waitFor := func(what string) {
		t.Helper()
		select {
		case n := <-changes:
			if n != nodeName {
				t.Fatalf("change for %s", n)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no change notified for %s", what)
		}
	}
	waitFor("the initial list")
	var pods []*v1.Pod
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ok bool
		if pods, ok = w.Pods(ctx, nodeName); ok || time.Now().After(deadline) {
			break
		}
		waitFor("the initial list")
	}
	// The fake clientset does not implement field selectors on watches;
	// the informer's list is filtered by the fake only for labels, so
	// check what the API server would have been asked instead.
	var sawSelector bool
	for _, a := range client.Actions() {
		if l, ok := a.(k8stesting.ListAction); ok && l.GetListRestrictions().Fields.String() == "spec.nodeName="+nodeName {
			sawSelector = true
		}
	}
	if !sawSelector {
		t.Errorf("pods were not listed with the field selector spec.nodeName=%s: %v", nodeName, client.Actions())
	}
	if len(pods) == 0 {
		t.Fatalf("no pods from the watch")
	}
	for len(changes) > 0 {
		<-changes
	}
	if err := client.CoreV1().Pods("default").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the deletion of a pod")
	w.Stop(nodeName)
	if len(w.Watching()) != 0 {
		t.Fatalf("still watching %v", w.Watching())
	}
}

// TestEvictionInFlightOutlivesTheContext: the controller stopping (or
// losing its lease) while an eviction request is on the wire does not cut
// it: the API server would otherwise record the pod as disrupted in its
// budget without deleting it, blocking the budget for two minutes.
func TestEvictionInFlightOutlivesTheContext(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	serverSawCancel := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/pods/web-1/eviction") {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		close(started)
		select {
		case <-release:
			serverSawCancel <- false
		case <-r.Context().Done():
			serverSawCancel <- true
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Success"}`))
	}))
	defer srv.Close()
	client, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	d := New(client, policylisters.NewPodDisruptionBudgetLister(idx), record.NewFakeRecorder(10),
		clocktesting.NewFakeClock(time.Now()), Options{RetryDelay: time.Second})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan decide.DrainStatus, 1)
	go func() { done <- d.Pass(ctx, nodeName, []*v1.Pod{pod("web-1")}) }()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("no eviction request")
	}
	cancel()
	close(release)
	select {
	case st := <-done:
		if st.Evicted != 1 {
			t.Errorf("pass %+v, want the eviction accepted", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the pass did not return")
	}
	if <-serverSawCancel {
		t.Error("the eviction request was cut when the context ended")
	}
}

// TestNoEvictionStartsAfterTheContextEnded: a stopping controller sends no
// new eviction.
func TestNoEvictionStartsAfterTheContextEnded(t *testing.T) {
	d, client, ev, _, _ := setup(t, Options{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st := d.Pass(ctx, nodeName, []*v1.Pod{pod("web-1"), pod("web-2")})
	if len(ev.got) != 0 || st.Evicted != 0 || st.Pending != 2 {
		t.Fatalf("after the end: %d evictions sent, status %+v; want none sent, 2 pending", len(ev.got), st)
	}
	noDeletes(t, client)
}
