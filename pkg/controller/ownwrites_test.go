package controller

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestOwnWrites: what the cache must show of the controller's own writes
// before a node is decided on again (behind), the takes admission counts
// as out (takesInFlight), and the versions that may give a slot back
// (pastTake). Each case does something, then asks, in order, about the
// node as cached at a version: pastTake, then takesInFlight (which
// forgets what the cache moved past), then behind.
func TestOwnWrites(t *testing.T) {
	at := func(rv string) *v1.Node {
		return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", ResourceVersion: rv}}
	}
	type check struct {
		rv                         string
		gone                       bool // the node is not in the cache: takesInFlight only
		pastTake, inFlight, behind bool
	}
	for _, tc := range []struct {
		name   string
		do     func(o *ownWrites)
		checks []check
		empty  bool // nothing is remembered in the end
	}{
		{name: "nothing remembered", do: func(*ownWrites) {},
			checks: []check{{rv: "10", pastTake: true}}, empty: true},
		{name: "take decided on v10: in flight on v10, landed on v11; its version kept after the cache moved past",
			do: func(o *ownWrites) { o.beginTake(at("10")) },
			checks: []check{
				{rv: "10", inFlight: true, behind: true},
				{rv: "11", pastTake: true},
				{rv: "10"}, // a worker's object read before the take: not past it
			}},
		{name: "refused take: not in flight, its version kept until the slot is given back",
			do:     func(o *ownWrites) { o.beginTake(at("10")); o.takeRefused("n1") },
			checks: []check{{rv: "10"}, {rv: "11", pastTake: true}}},
		{name: "slot released: the take forgotten",
			do:     func(o *ownWrites) { o.beginTake(at("10")); o.takeRefused("n1"); o.slotReleased("n1") },
			checks: []check{{rv: "10", pastTake: true}}, empty: true},
		{name: "the informer shows the take: no longer in flight, its version kept",
			do:     func(o *ownWrites) { o.beginTake(at("10")); o.seen(at("11")) },
			checks: []check{{rv: "10"}, {rv: "11", pastTake: true}}},
		{name: "the informer shows the take's version again: still in flight",
			do:     func(o *ownWrites) { o.beginTake(at("10")); o.seen(at("10")) },
			checks: []check{{rv: "10", inFlight: true, behind: true}}},
		{name: "take in flight, node gone from the cache: not counted",
			do:     func(o *ownWrites) { o.beginTake(at("10")) },
			checks: []check{{gone: true}, {rv: "10"}}},
		{name: "write v15: behind on v12 and v14, not on v15, then forgotten",
			do: func(o *ownWrites) { o.wrote("n1", "15") },
			checks: []check{
				{rv: "12", pastTake: true, behind: true},
				{rv: "14", pastTake: true, behind: true},
				{rv: "15", pastTake: true},
				{rv: "14", pastTake: true},
			}, empty: true},
		{name: "write with an unparsable version: not waited for",
			do:     func(o *ownWrites) { o.wrote("n1", "opaque") },
			checks: []check{{rv: "1", pastTake: true}}, empty: true},
		{name: "cached version unparsable: the write is not waited for, and forgotten",
			do:     func(o *ownWrites) { o.wrote("n1", "15") },
			checks: []check{{rv: "opaque", pastTake: true}, {rv: "12", pastTake: true}}, empty: true},
		{name: "take decided on an unparsable version: in flight while the cache shows that string, never passed",
			do: func(o *ownWrites) { o.beginTake(at("a")) },
			checks: []check{
				{rv: "a", inFlight: true, behind: true},
				{rv: "b"},
				{rv: "100"},
			}},
		{name: "take on v10, then a write v12: behind until v12",
			do: func(o *ownWrites) { o.beginTake(at("10")); o.wrote("n1", "12") },
			checks: []check{
				{rv: "11", pastTake: true, behind: true},
				{rv: "12", pastTake: true},
			}},
		{name: "a write v11 landed before the take, which is refused: the write still awaited",
			do: func(o *ownWrites) { o.beginTake(at("10")); o.wrote("n1", "11"); o.takeRefused("n1") },
			checks: []check{
				{rv: "10", behind: true},
				{rv: "11", pastTake: true},
			}},
		{name: "forget: take and write dropped",
			do:     func(o *ownWrites) { o.beginTake(at("10")); o.wrote("n1", "15"); o.forget("n1") },
			checks: []check{{rv: "10", pastTake: true}}, empty: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOwnWrites()
			tc.do(o)
			for i, c := range tc.checks {
				if c.gone {
					if got := o.takesInFlight(nil); len(got) != 0 {
						t.Errorf("check %d, node gone: in flight %v", i, got)
					}
					continue
				}
				n := at(c.rv)
				if got := o.pastTake(n); got != c.pastTake {
					t.Errorf("check %d, cache at %q: pastTake %t, want %t", i, c.rv, got, c.pastTake)
				}
				if got := o.takesInFlight([]*v1.Node{n})["n1"]; got != c.inFlight {
					t.Errorf("check %d, cache at %q: take in flight %t, want %t", i, c.rv, got, c.inFlight)
				}
				if got := o.behind(n); got != c.behind {
					t.Errorf("check %d, cache at %q: behind %t, want %t", i, c.rv, got, c.behind)
				}
			}
			if empty := len(o.nodes) == 0; empty != tc.empty {
				t.Errorf("records %v: empty %t, want %t", o.nodes, empty, tc.empty)
			}
		})
	}
}
