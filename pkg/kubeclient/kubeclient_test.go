package kubeclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// request is what the fake API server saw.
type request struct {
	method, path, query, contentType, body string
}

// fakeAPI answers every request with the JSON of the object reply returns
// for it, and records the requests.
type fakeAPI struct {
	mu       sync.Mutex
	requests []request
}

func (f *fakeAPI) start(t *testing.T, reply func(r *http.Request) any) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), string(body)})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" {
			enc := json.NewEncoder(w)
			_ = enc.Encode(map[string]any{"type": "ADDED", "object": reply(r)})
			return
		}
		_ = json.NewEncoder(w).Encode(reply(r))
	}))
	t.Cleanup(srv.Close)
	c, err := New(&rest.Config{Host: srv.URL}, "test-manager")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakeAPI) last() request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func node(name, rv string) *corev1.Node {
	return &corev1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
}

func TestListAndWatchNodesBySelector(t *testing.T) {
	var f fakeAPI
	c := f.start(t, func(r *http.Request) any {
		if r.URL.Query().Get("watch") == "true" {
			return node("n1", "8")
		}
		return &corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"},
			ListMeta: metav1.ListMeta{ResourceVersion: "7"}, Items: []corev1.Node{*node("n1", "7")}}
	})
	lw := c.NodeListWatch("metadata.name=n1")
	obj, err := lw.(cache.ListerWatcherWithContext).ListWithContext(context.Background(), metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if l := obj.(*corev1.NodeList); len(l.Items) != 1 || l.Items[0].Name != "n1" || l.ResourceVersion != "7" {
		t.Fatalf("list %+v", l)
	}
	if got := f.last(); got.method != http.MethodGet || got.path != "/api/v1/nodes" || got.query != "fieldSelector=metadata.name%3Dn1&resourceVersion=0" {
		t.Fatalf("list request %+v", got)
	}
	w, err := lw.(cache.ListerWatcherWithContext).WatchWithContext(context.Background(), metav1.ListOptions{ResourceVersion: "7"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case ev := <-w.ResultChan():
		if n, ok := ev.Object.(*corev1.Node); !ok || n.Name != "n1" || n.ResourceVersion != "8" {
			t.Fatalf("watch event %v %#v", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	if got := f.last(); got.query != "fieldSelector=metadata.name%3Dn1&resourceVersion=7&watch=true" {
		t.Fatalf("watch request %+v", got)
	}
}

func TestPatchNodeStatus(t *testing.T) {
	var f fakeAPI
	c := f.start(t, func(*http.Request) any { return node("n1", "9") })
	n, err := c.PatchNode(context.Background(), "n1", types.StrategicMergePatchType, []byte(`{"status":{}}`), "status")
	if err != nil || n.Name != "n1" || n.ResourceVersion != "9" {
		t.Fatalf("patch: %v %+v", err, n)
	}
	want := request{http.MethodPatch, "/api/v1/nodes/n1/status", "fieldManager=test-manager", string(types.StrategicMergePatchType), `{"status":{}}`}
	if got := f.last(); got != want {
		t.Fatalf("request %+v, want %+v", got, want)
	}
}

func TestEventSinkWritesInTheEventsNamespace(t *testing.T) {
	var f fakeAPI
	c := f.start(t, func(*http.Request) any {
		return &corev1.Event{TypeMeta: metav1.TypeMeta{Kind: "Event", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: "default"}}
	})
	sink := c.EventSink(context.Background())
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: "default"}, Reason: "Rebooting"}
	if _, err := sink.Create(ev); err != nil {
		t.Fatal(err)
	}
	if got := f.last(); got.method != http.MethodPost || got.path != "/api/v1/namespaces/default/events" {
		t.Fatalf("create %+v", got)
	}
	if _, err := sink.Update(ev); err != nil {
		t.Fatal(err)
	}
	if got := f.last(); got.method != http.MethodPut || got.path != "/api/v1/namespaces/default/events/e1" {
		t.Fatalf("update %+v", got)
	}
	if _, err := sink.Patch(ev, []byte(`{"count":2}`)); err != nil {
		t.Fatal(err)
	}
	if got := f.last(); got.method != http.MethodPatch || got.path != "/api/v1/namespaces/default/events/e1" ||
		got.contentType != string(types.StrategicMergePatchType) || got.body != `{"count":2}` {
		t.Fatalf("patch %+v", got)
	}
}
