package replacement

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// TestMatchPairsEachEvictionWithTheNextReplacement: replacements are paired
// in order with the evictions before them; one Ready before any eviction
// (a pod of the workload's start) is no replacement, and an eviction
// without a replacement is counted as such.
func TestMatchPairsEachEvictionWithTheNextReplacement(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := &Watch{initial: map[types.UID]bool{"old": true}, readyAt: map[types.UID]time.Time{
		"old": at(-100), "early": at(-50), "r1": at(40), "r2": at(70),
	}}
	w.evicted = []Eviction{{Pod: "b", Node: "n2", At: at(20)}, {Pod: "a", Node: "n1", At: at(0)}, {Pod: "c", Node: "n3", At: at(100)}}
	paired, unpaired := w.match()
	if unpaired != 1 || len(paired) != 2 {
		t.Fatalf("paired %v, unpaired %d; want 2 and 1", paired, unpaired)
	}
	if paired[0].Pod != "a" || paired[0].Took != 40*time.Millisecond || paired[1].Pod != "b" || paired[1].Took != 50*time.Millisecond {
		t.Errorf("paired %+v", paired)
	}
	if got := Limit(3, 2, time.Second, paired); got != 2*(time.Second+45*time.Millisecond) {
		t.Errorf("limit %s", got)
	}
}
