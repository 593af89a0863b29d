package framework

import (
	"context"
	"testing"
	"time"
)

// Stop must leave nothing running: every component exits.
func TestStopEndsEveryProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Logf: t.Logf})
	if c != nil {
		defer c.Remove()
	}
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	procs := c.Processes()
	if len(procs) != 5 {
		t.Fatalf("%d processes, want 5", len(procs))
	}
	c.Stop()
	for _, p := range procs {
		select {
		case <-p.Exited():
		default:
			t.Errorf("%s still running after Stop", p.Name)
		}
	}
}
