package sanitize

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"plain", "libc6", 0, "libc6"},
		{"white space collapsed and trimmed", " a\tb\n\nc \r\n", 0, "a b c"},
		{"unicode spaces", "a\u00a0b\u2028c\u0085d", 0, "a b c d"},
		{"ESC sequence (clear screen)", "x\x1b[2Jy", 0, `x\x1b[2Jy`},
		{"BEL", "ding\a", 0, `ding\x07`},
		{"NUL and DEL", "a\x00b\x7f", 0, `a\x00b\x7f`},
		{"C1 CSI", "a\u009b31mb", 0, `a\u009b31mb`},
		{"bidi override (Trojan Source)", "abc\u202edef", 0, `abc\u202edef`},
		{"zero width space is a format character", "a\u200bb", 0, `a\u200bb`},
		{"invalid UTF-8", "a\xffb\xc3", 0, `a\xffb\xc3`},
		{"printable non-ASCII kept", "ünïcödé 日本 ✓", 0, "ünïcödé 日本 ✓"},
		{"backslash kept", `C:\x1b`, 0, `C:\x1b`},
		{"fits exactly", "abcdefghij", 10, "abcdefghij"},
		{"cut", "abcdefghijk", 10, "abcdefg..."},
		{"cut between characters", "ééééé", 8, "éé..."},
		{"cut before an escape, never inside", "abcde\x1bfgh", 10, "abcde..."},
		{"cut drops the space before the ellipsis", "abc defghijk", 7, "abc..."},
		{"cut after collapsing", "a    b    c    d    e", 7, "a b..."},
		{"tiny cap", "abcdef", 2, ""},
		{"empty", "", 10, ""},
		{"only spaces", " \t\n ", 10, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Line(tc.in, tc.max); got != tc.want {
				t.Errorf("Line(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
		})
	}
}

func TestMessageCapsAtOneKiB(t *testing.T) {
	got := Message(strings.Repeat("\x1b", 2000))
	if len(got) > MaxMessage || !strings.HasSuffix(got, Ellipsis) || strings.ContainsRune(got, 0x1b) {
		t.Fatalf("Message: %d bytes, %q...", len(got), got[:20])
	}
}

func TestList(t *testing.T) {
	for _, tc := range []struct {
		items []string
		max   int
		want  string
		most  int
	}{
		{[]string{"a"}, 200, "a", 0},
		{[]string{"a", "b", "c"}, 200, "a, b, c", 0},
		{[]string{"a", "b", "c"}, 7, "a, b, c", 0},
		{[]string{"a", "b", "c"}, 0, "a, b, c", 0},
		{[]string{"aaaa", "bbbb", "cccc", "dddd"}, 20, "aaaa and 3 more", 0},
		{[]string{"aaaa", "bbbb", "cccc", "dddd"}, 21, "aaaa, bbbb and 2 more", 0},
		{[]string{"a-very-long-package-name"}, 10, "a-very-...", 0},
		{[]string{"a-very-long-package-name", "b"}, 20, "a-very... and 1 more", 0},
		{[]string{"ééééé"}, 8, "éé...", 0},
		{[]string{"aéééé"}, 8, "aéé...", 0},
		{[]string{"evil\x1b]0;pwned\a", "ok"}, 200, `evil\x1b]0;pwned\x07, ok`, 0},
		{[]string{"", " \t", "x"}, 200, "x", 0},
		{[]string{"abcdefgh", "b"}, 12, "abcdefgh, b", 0},
		{[]string{"abcdefghijkl", "b"}, 12, "abcdefghi...", 0},
		{[]string{"1", "2", "3", "4", "5", "6", "7"}, 0, "1, 2, 3, 4, 5 and 2 more", 5},
		{[]string{"1", "2", "3", "4", "5"}, 0, "1, 2, 3, 4, 5", 5},
		{[]string{"aaaa", "bbbb", "cccc", "dddd"}, 20, "aaaa and 3 more", 2},
		{[]string{"aaaa", "bbbb", "cccc", "dddd"}, 200, "aaaa and 3 more", 1},
		{nil, 10, "", 0},
	} {
		got := List(tc.items, tc.most, tc.max)
		if got != tc.want {
			t.Errorf("List(%q, %d, %d) = %q, want %q", tc.items, tc.most, tc.max, got, tc.want)
		}
	}
}

// clean reports why s is not what Line may return, or "".
func clean(s string) string {
	if !utf8.ValidString(s) {
		return "invalid UTF-8"
	}
	for _, r := range s {
		switch {
		case r == ' ':
		case unicode.IsSpace(r):
			return "white space other than a single space"
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return "a control or format character"
		}
	}
	if strings.Contains(s, "  ") || strings.TrimSpace(s) != s {
		return "spaces not collapsed or trimmed"
	}
	return ""
}

// FuzzLine: whatever the input, the output is clean, fits, is idempotent,
// and is the input itself when the input was already clean and fits.
func FuzzLine(f *testing.F) {
	for _, s := range []string{"libc6", "a\x1b[2Jb", "\u202e", "é\xff\xfe", " a  b ", strings.Repeat("é\x07", 100)} {
		f.Add(s, 0)
		f.Add(s, 7)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max %= 2048
		got := Line(s, max)
		if why := clean(got); why != "" {
			t.Fatalf("Line(%q, %d) = %q: %s", s, max, got, why)
		}
		if max > 0 && len(got) > max {
			t.Fatalf("Line(%q, %d) = %q: %d bytes", s, max, got, len(got))
		}
		if again := Line(got, max); again != got {
			t.Fatalf("not idempotent: Line(%q) = %q, again %q", s, got, again)
		}
		if clean(s) == "" && (max <= 0 || len(s) <= max) && got != s {
			t.Fatalf("clean input %q changed to %q", s, got)
		}
	})
}

// FuzzList: the list fits and every part of it is clean.
func FuzzList(f *testing.F) {
	f.Add("linux-image-6.1.0-30-amd64\nlibc6", 200)
	f.Add("a\x1b\nb\u202e\nccccccccccccccccccccc", 12)
	f.Fuzz(func(t *testing.T, joined string, max int) {
		max %= 2048
		got := List(strings.Split(joined, "\n"), 0, max)
		if why := clean(got); why != "" {
			t.Fatalf("List = %q: %s", got, why)
		}
		if max > 0 && len(got) > max {
			t.Fatalf("List(.., %d) = %q: %d bytes", max, got, len(got))
		}
	})
}

// Cleaning a list of huge items costs in proportion to the cap, not to the
// input (a Prometheus answer may hold 16 MiB of alert names).
func BenchmarkListHuge(b *testing.B) {
	items := []string{strings.Repeat("\x1b", 8<<20), strings.Repeat("é", 4<<20)}
	for b.Loop() {
		if got := List(items, 0, MaxMessage); len(got) > MaxMessage {
			b.Fatal(len(got))
		}
	}
}
