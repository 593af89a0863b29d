package drain

import (
	"reflect"
	"testing"
)

func TestBudgetTurnsOneRequestPerBudget(t *testing.T) {
	var turns budgetTurns
	var woken []string
	turns.setWake(func(node string) { woken = append(woken, node) })

	releaseA, ok := turns.tryTake([]string{"ns/b", "ns/a"}, "node-1")
	if !ok {
		t.Fatal("free turns not given")
	}
	// While ns/a's turn is held, a request under ns/a (and ns/c) waits,
	// and takes nothing: ns/c stays free.
	if _, ok := turns.tryTake([]string{"ns/c", "ns/a"}, "node-2"); ok {
		t.Fatal("ns/a given twice")
	}
	if _, ok := turns.tryTake([]string{"ns/b"}, "node-3"); ok {
		t.Fatal("ns/b given twice")
	}
	releaseC, ok := turns.tryTake([]string{"ns/c"}, "node-4")
	if !ok {
		t.Fatal("ns/c held by a take that failed")
	}
	// A pod under no budget never waits.
	if release, ok := turns.tryTake(nil, "node-5"); !ok {
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
	again, ok := turns.tryTake([]string{"ns/a", "ns/b"}, "node-2")
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
	release, _ := turns.tryTake([]string{"ns/a"}, "node-1")
	turns.tryTake([]string{"ns/a"}, "node-2")
	turns.forget("node-2")
	release()
	if len(woken) != 0 {
		t.Fatalf("a forgotten node was woken: %v", woken)
	}
}
