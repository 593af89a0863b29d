package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestReportShowsFailuresAndNever: a failed run is shown as failed, and a
// recovery that never happened is "never", not 0 s.
func TestReportShowsFailuresAndNever(t *testing.T) {
	in := strings.Join([]string{
		`{"fault":"f","run":0,"passed":true,"rolloutSeconds":10,"recoverySeconds":2,"violations":[],"reboots":3,"maxOut":1}`,
		`{"fault":"f","run":1,"passed":false,"rolloutSeconds":240,"recoverySeconds":null,"violations":["I5 the rollout did not end"],"reboots":1,"maxOut":1}`,
		`{"fault":"f","run":2,"passed":true,"rolloutSeconds":11,"recoverySeconds":0,"violations":[],"reboots":3,"maxOut":1}`,
		`{"fault":"g","run":0,"passed":true,"rolloutSeconds":9,"recoverySeconds":1.5,"violations":[],"reboots":3,"maxOut":1}`,
	}, "\n")
	var out bytes.Buffer
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	f, g := lines[2], lines[3]
	for _, want := range []string{"| f | 3 | **1 FAILED** (#1) | 1 |", "| 2.0 s / never |"} {
		if !strings.Contains(f, want) {
			t.Errorf("row %q lacks %q", f, want)
		}
	}
	for _, want := range []string{"| g | 1 | 0 | 0 |", "| 1.5 s / 1.5 s |"} {
		if !strings.Contains(g, want) {
			t.Errorf("row %q lacks %q", g, want)
		}
	}
}
