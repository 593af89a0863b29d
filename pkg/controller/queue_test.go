package controller

import (
	"slices"
	"testing"

	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// The node queue serves the nodes in the pipeline first, in the order they
// were added, then the others in theirs; a queued node that enters the
// pipeline moves to the end of the first FIFO when it is added again; a
// key is queued once however often it is added.
func TestQueueServesNodesOutFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  []string // in the pipeline from the start
		adds []string // "+k" marks k out before adding it again
		want []string
	}{
		{"FIFO when none is out", nil, []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"out first", []string{"c"}, []string{"a", "b", "c"}, []string{"c", "a", "b"}},
		{"each FIFO in order", []string{"b", "d"}, []string{"a", "b", "c", "d"}, []string{"b", "d", "a", "c"}},
		{"added twice: queued once", []string{"b"}, []string{"a", "b", "a", "b"}, []string{"b", "a"}},
		{"taken while queued moves up", nil, []string{"a", "b", "c", "+b"}, []string{"b", "a", "c"}},
		{"behind the ones out before", []string{"a"}, []string{"a", "b", "c", "+c"}, []string{"a", "c", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := map[string]bool{}
			for _, k := range tc.out {
				out[k] = true
			}
			q := newQueue(clocktesting.NewFakeClock(fixtureNow), "", func(k string) bool { return out[k] })
			defer q.ShutDown()
			for _, a := range tc.adds {
				if a[0] == '+' {
					a = a[1:]
					out[a] = true
				}
				q.Add(a)
			}
			if got := served(q); !slices.Equal(got, tc.want) {
				t.Errorf("served %q, want %q", got, tc.want)
			}
		})
	}
}

// served gets every queued key, marking each done, in the order served.
func served(q workqueue.TypedRateLimitingInterface[string]) []string {
	var got []string
	for q.Len() > 0 {
		k, _ := q.Get()
		q.Done(k)
		got = append(got, k)
	}
	return got
}

// A key handled while it is added again is queued again when it is done,
// in the FIFO it belongs to then.
func TestQueueRequeuesADoneKeyByItsStateThen(t *testing.T) {
	out := map[string]bool{}
	q := newQueue(clocktesting.NewFakeClock(fixtureNow), "", func(k string) bool { return out[k] })
	defer q.ShutDown()
	q.Add("a")
	k, _ := q.Get()
	q.Add("b")
	q.Add("a") // while a is handled: dirty, queued on Done
	out["a"] = true
	q.Done(k)
	if got, want := served(q), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("served %q, want %q", got, want)
	}
}

// The controller's node queue reads "in the pipeline" from its node cache:
// a node taken (marked out) is synced before waiting nodes queued earlier.
func TestControllerQueueServesTakenNodesFirst(t *testing.T) {
	f := newFixture(t, testConfig(1), clocktesting.NewFakeClock(fixtureNow), requiring("waiting"),
		inState(requiring("taken"), contract.StateDraining, fixtureNow), slotRecord(1, fixtureNow, "taken"))
	f.emptyQueue()
	f.c.queue.Add("waiting")
	f.c.queue.Add("taken")
	if k, _ := f.c.queue.Get(); k != "taken" {
		t.Errorf("served %q first, want the taken node", k)
	}
}
