package contract

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// FuzzParseState: only the five states parse, each to itself; everything
// else is an error that quotes the value.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{"", "Draining", "Authorized", "Rebooted", "Failed", "draining", "Rebooting", " Failed", "Failed\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseState(s)
		valid := s == "" || s == "Draining" || s == "Authorized" || s == "Rebooted" || s == "Failed"
		if valid != (err == nil) {
			t.Fatalf("ParseState(%q) = %q, %v", s, st, err)
		}
		if err == nil {
			if string(st) != s {
				t.Fatalf("ParseState(%q) = %q", s, st)
			}
			if st.Active() != (s != "") {
				t.Fatalf("%q.Active() = %v", s, st.Active())
			}
			return
		}
		if st != "" {
			t.Fatalf("ParseState(%q) returned %q with an error", s, st)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
			t.Fatalf("ParseState(%q): error %q does not quote the value", s, err)
		}
	})
}

// FuzzParseTime: a parsed time formats to a value that parses to the same
// instant (at second precision), and FormatTime's output always parses.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-25T18:00:00Z", "2026-11-25T18:00:00+01:00", "2026-11-25T18:00:00.123456789Z",
		"yesterday", "", "2026-13-45T99:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-11-25 18:00:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s)
		if err != nil {
			if !tm.IsZero() {
				t.Fatalf("ParseTime(%q) = %v with an error", s, tm)
			}
			if !strings.Contains(err.Error(), "RFC 3339") {
				t.Fatalf("ParseTime(%q): error %q does not say what is wanted", s, err)
			}
			return
		}
		if tm.Year() < 0 || tm.Year() > 9999 {
			return // beyond what RFC 3339 can write back
		}
		out := FormatTime(tm)
		back, err := ParseTime(out)
		if err != nil {
			t.Fatalf("FormatTime(ParseTime(%q)) = %q does not parse: %v", s, out, err)
		}
		if !back.Equal(tm.Truncate(time.Second)) {
			t.Fatalf("%q -> %v -> %q -> %v", s, tm, out, back)
		}
		if !strings.HasSuffix(out, "Z") {
			t.Fatalf("FormatTime = %q, want UTC", out)
		}
	})
}
