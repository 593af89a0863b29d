package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestQuick runs every benchmark once at a tiny size, so that `make test`
// keeps them working. It asserts that they run and report, not how fast.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several local control planes")
	}
	var out bytes.Buffer
	if code := run([]string{"--quick"}, &out); code != 0 {
		t.Fatalf("bench --quick exited %d:\n%s", code, out.String())
	}
	for _, b := range benchmarks {
		if !strings.Contains(out.String(), b.name) {
			t.Errorf("no figure from %s:\n%s", b.name, out.String())
		}
	}
	t.Log(out.String())
}

func TestBadFlag(t *testing.T) {
	if code := run([]string{"--only", "nonsense"}, &bytes.Buffer{}); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}
