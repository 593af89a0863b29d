package detector

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodereboot/nodereboot/pkg/sentinel"
)

// runSource runs a source until the test ends and returns its observations.
func runSource(t *testing.T, s Source, probeNow chan struct{}) <-chan sentinel.Observation {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan sentinel.Observation, 100)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, probeNow, func(o sentinel.Observation) { out <- o }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return out
}

func nextObs(t *testing.T, c <-chan sentinel.Observation) sentinel.Observation {
	t.Helper()
	select {
	case o := <-c:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no observation within 10s")
		return sentinel.Observation{}
	}
}

func TestFileSource(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	p := filepath.Join(t.TempDir(), "reboot-required")
	probe := make(chan struct{}, 1)
	obs := runSource(t, FileSource{Path: p, ResyncPeriod: time.Minute, Clock: clk}, probe)
	if o := nextObs(t, obs); o.Status != v1.ConditionFalse {
		t.Fatalf("first observation %v", o)
	}
	// inotify.
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for o := nextObs(t, obs); o.Status != v1.ConditionTrue; o = nextObs(t, obs) {
	}
	// Drain what the write's events produced, then the resync alone.
	waitForTimer(t, clk)
	for len(obs) > 0 {
		<-obs
	}
	clk.Step(time.Minute)
	if o := nextObs(t, obs); o.Status != v1.ConditionTrue {
		t.Fatalf("resync observation %v", o)
	}
	// On request.
	probe <- struct{}{}
	if o := nextObs(t, obs); o.Status != v1.ConditionTrue {
		t.Fatalf("requested observation %v", o)
	}
}

func TestCommandSource(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	dir := t.TempDir()
	count := filepath.Join(dir, "runs")
	probe := make(chan struct{}, 1)
	obs := runSource(t, CommandSource{Argv: []string{"sh", "-c", "echo x >> " + count + "; exit 1"}, Period: time.Minute, Clock: clk}, probe)
	if o := nextObs(t, obs); o.Status != v1.ConditionFalse || o.Reason != sentinel.ReasonCommandNotRequired {
		t.Fatalf("first observation %v", o)
	}
	waitForTimer(t, clk)
	clk.Step(time.Minute)
	nextObs(t, obs)
	probe <- struct{}{}
	nextObs(t, obs)
	if b, err := os.ReadFile(count); err != nil || string(b) != "x\nx\nx\n" {
		t.Fatalf("the command ran %q times, want 3 (start, period, request): %v", b, err)
	}
}
