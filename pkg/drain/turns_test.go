package drain

import (
	"reflect"
	"testing"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var turnsNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// holding is a request of node's pod "p-<node>" under the budgets keys (all
// read at version "1"), sent at since.
func holding(since time.Time, node string, keys ...string) *turn {
	tn := &turn{node: node, pod: "p-" + node, since: since, versions: map[string]string{}, listed: map[string]bool{}}
	for _, k := range keys {
		tn.versions[k] = "1"
	}
	return tn
}

func TestBudgetTurnsOneRequestPerBudget(t *testing.T) {
	var turns budgetTurns
	var woken []string
	turns.setWake(func(node string) { woken = append(woken, node) })

	releaseA, _, ok := turns.tryTake(holding(turnsNow, "node-1", "ns/b", "ns/a"))
	if !ok {
		t.Fatal("free turns not given")
	}
	// While ns/a's turn is held, a request under ns/a (and ns/c) waits,
	// and takes nothing: ns/c stays free.
	if _, _, ok := turns.tryTake(holding(turnsNow, "node-2", "ns/c", "ns/a")); ok {
		t.Fatal("ns/a given twice")
	}
	if _, _, ok := turns.tryTake(holding(turnsNow, "node-3", "ns/b")); ok {
		t.Fatal("ns/b given twice")
	}
	releaseC, _, ok := turns.tryTake(holding(turnsNow, "node-4", "ns/c"))
	if !ok {
		t.Fatal("ns/c held by a take that failed")
	}
	// A pod under no budget never waits.
	if release, _, ok := turns.tryTake(holding(turnsNow, "node-5")); !ok {
		t.Fatal("no budget: waited")
	} else {
		release()
	}
	if len(woken) != 0 {
		t.Fatalf("woken before any turn freed: %v", woken)
	}
	releaseC()
	if len(woken) != 0 {
		t.Fatalf("ns/c had no waiter, woken: %v", woken)
	}
	releaseA()
	if want := []string{"node-2", "node-3"}; !reflect.DeepEqual(woken, want) {
		t.Fatalf("woken = %v, want %v", woken, want)
	}
	// Woken once: the waiters are gone.
	woken = nil
	again, _, ok := turns.tryTake(holding(turnsNow, "node-2", "ns/a", "ns/b"))
	if !ok {
		t.Fatal("turns not given back")
	}
	again()
	if len(woken) != 0 {
		t.Fatalf("woken twice: %v", woken)
	}
}

func TestBudgetTurnsForget(t *testing.T) {
	var turns budgetTurns
	var woken []string
	turns.setWake(func(node string) { woken = append(woken, node) })
	release, _, _ := turns.tryTake(holding(turnsNow, "node-1", "ns/a"))
	turns.tryTake(holding(turnsNow, "node-2", "ns/a"))
	turns.forget("node-2")
	release()
	if len(woken) != 0 {
		t.Fatalf("a forgotten node was woken: %v", woken)
	}
}

// A request on the wire for TurnLease after somebody else changed its
// budget no longer holds the budget alone (it most likely sleeps in the API
// server's retry after losing the race with that change): one more request
// may go, never a third, and the waiter is woken by the change to learn
// when the turn lapses. Without a change of the budget the turn never
// lapses. The first request's late answer frees only its own hold.
func TestBudgetTurnLapses(t *testing.T) {
	var turns budgetTurns
	var woken []string
	turns.setWake(func(node string) { woken = append(woken, node) })
	releaseSlow, _, ok := turns.tryTake(holding(turnsNow, "slow", "ns/a"))
	if !ok {
		t.Fatal("free turn not given")
	}
	if _, at, ok := turns.tryTake(holding(turnsNow.Add(time.Hour), "node-2", "ns/a")); ok || !at.IsZero() {
		t.Fatalf("budget unchanged: given %v, due at %v; want a wait for the answer", ok, at)
	}
	turns.recorded(recordedPDB("2", "p-other")) // somebody else's update
	if want := []string{"node-2"}; !reflect.DeepEqual(woken, want) {
		t.Fatalf("woken = %v on the change, want %v", woken, want)
	}
	woken = nil
	turns.recorded(recordedPDB("3")) // a second change wakes nobody again
	if len(woken) != 0 {
		t.Fatalf("woken again: %v", woken)
	}
	_, at, ok := turns.tryTake(holding(turnsNow.Add(TurnLease-time.Millisecond), "node-2", "ns/a"))
	if ok || !at.Equal(turnsNow.Add(TurnLease)) {
		t.Fatalf("before the lease ends: given %v, due at %v; want a wait until %v", ok, at, turnsNow.Add(TurnLease))
	}
	releaseSecond, _, ok := turns.tryTake(holding(turnsNow.Add(TurnLease), "node-2", "ns/a"))
	if !ok {
		t.Fatal("not given once the first request outlasted the lease")
	}
	// Two on the wire: a third waits for an answer, however long.
	turns.recorded(recordedPDB("4"))
	if _, at, ok := turns.tryTake(holding(turnsNow.Add(time.Hour), "node-3", "ns/a")); ok || !at.IsZero() {
		t.Fatalf("third request: given %v, due at %v; want a wait for a release", ok, at)
	}
	woken = nil
	releaseSlow()
	if want := []string{"node-3"}; !reflect.DeepEqual(woken, want) {
		t.Fatalf("woken = %v, want %v", woken, want)
	}
	// node-2's request is the holder now, the budget changed under it (4):
	// its own lease counts.
	if _, _, ok := turns.tryTake(holding(turnsNow.Add(TurnLease+time.Millisecond), "node-3", "ns/a")); ok {
		t.Fatal("the late answer of the first request freed the second's turn")
	}
	releaseSecond()
	if _, _, ok := turns.tryTake(holding(turnsNow.Add(TurnLease+time.Millisecond), "node-3", "ns/a")); !ok {
		t.Fatal("turn not given back")
	}
}

func recordedPDB(rv string, disrupted ...string) *policyv1.PodDisruptionBudget {
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", ResourceVersion: rv},
		Status: policyv1.PodDisruptionBudgetStatus{DisruptedPods: map[string]metav1.Time{}}}
	for _, p := range disrupted {
		pdb.Status.DisruptedPods[p] = metav1.NewTime(turnsNow)
	}
	return pdb
}

// A budget status that records the pod of a request on the wire (a version
// after the one read before it) frees that request's turn: the API server
// made its update of the budget. The same version, another pod, or a pod
// the status named already before the request free nothing.
func TestBudgetTurnFreedWhenTheBudgetRecordsTheEviction(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listed bool // the status named a pod of that name before the request
		pdb    *policyv1.PodDisruptionBudget
		freed  bool
	}{
		{"recorded", false, recordedPDB("2", "p-node-1"), true},
		{"version read before", false, recordedPDB("1", "p-node-1"), false},
		{"another pod", false, recordedPDB("2", "p-other"), false},
		{"named before the request", true, recordedPDB("2", "p-node-1"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var turns budgetTurns
			var woken []string
			turns.setWake(func(node string) { woken = append(woken, node) })
			tn := holding(turnsNow, "node-1", "ns/a")
			tn.listed["ns/a"] = tc.listed
			release, _, _ := turns.tryTake(tn)
			turns.tryTake(holding(turnsNow, "node-2", "ns/a"))
			turns.recorded(tc.pdb)
			_, _, ok := turns.tryTake(holding(turnsNow, "node-3", "ns/a"))
			if ok != tc.freed {
				t.Fatalf("turn free after the status update: %v, want %v", ok, tc.freed)
			}
			if tc.freed && !reflect.DeepEqual(woken, []string{"node-2"}) {
				t.Fatalf("woken = %v, want [node-2]", woken)
			}
			release() // the answer: frees only what the request still holds
			if tc.freed {
				if _, _, ok := turns.tryTake(holding(turnsNow, "node-4", "ns/a")); ok {
					t.Fatal("the answer freed node-3's turn")
				}
			}
		})
	}
}
