package sanitize

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxMessage caps a message built from outside text (a gate's or
// Prometheus' explanation, a condition message, an event, a
// notification): 1 KiB, the limit the events.k8s.io API puts on an
// event's note.
const MaxMessage = 1024

// Ellipsis ends text that Line or List cut.
const Ellipsis = "..."

// Line returns s on one line and safe to show, in at most max bytes (no cap
// when max <= 0): white space (any Unicode space, including tab, newline
// and NEL) collapsed into single spaces and trimmed at both ends; control
// and format characters and invalid UTF-8 escaped; cut before the first
// character or escape that would not fit, followed by Ellipsis, when it is
// longer than max.
func Line(s string, max int) string {
	var b strings.Builder
	if max > 0 {
		b.Grow(min(len(s), max))
	} else {
		b.Grow(len(s))
	}
	// fit is the length of b at the last piece boundary that leaves room
	// for the Ellipsis.
	fit := 0
	space := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+size]
		switch {
		case r == utf8.RuneError && size == 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case unicode.IsSpace(r):
			space = true
			i += size
			continue
		case unicode.IsControl(r) && r < utf8.RuneSelf:
			piece = fmt.Sprintf(`\x%02x`, r)
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			piece = fmt.Sprintf(`\u%04x`, r)
		}
		i += size
		if space && b.Len() > 0 {
			piece = " " + piece
		}
		space = false
		if max > 0 && b.Len()+len(piece) > max {
			// Whatever follows, s does not fit: cut at the last
			// boundary with room for the Ellipsis.
			out := strings.TrimRight(b.String()[:fit], " ")
			if max < len(Ellipsis) {
				return out
			}
			return out + Ellipsis
		}
		b.WriteString(piece)
		if b.Len() <= max-len(Ellipsis) {
			fit = b.Len()
		}
	}
	return b.String()
}

// Message is Line capped at MaxMessage bytes: the form of every message
// that carries outside text.
func Message(s string) string { return Line(s, MaxMessage) }

// List cleans each item with Line and joins them with ", ": at most most
// items (no limit when most <= 0) in at most max bytes (no cap when
// max <= 0), followed by " and N more" for the rest; when even the first
// item does not fit with that, it is cut. Empty items (after cleaning) are
// left out.
func List(items []string, most, max int) string {
	clean := make([]string, 0, len(items))
	for _, it := range items {
		// An item longer than the whole list cannot be shown whole:
		// cutting it now bounds the work on huge input.
		if c := Line(it, max); c != "" {
			clean = append(clean, c)
		}
	}
	n := len(clean)
	if most > 0 {
		n = min(n, most)
	}
	// The largest prefix that fits together with its " and N more".
	for ; n >= 1; n-- {
		if s := strings.Join(clean[:n], ", ") + more(len(clean)-n); max <= 0 || len(s) <= max {
			return s
		}
	}
	if len(clean) == 0 {
		return ""
	}
	rest := more(len(clean) - 1)
	if max-len(rest) <= len(Ellipsis) {
		// No room for even a cut item: cut the whole list.
		return Line(strings.Join(clean, ", "), max)
	}
	return Line(clean[0], max-len(rest)) + rest
}

func more(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" and %d more", n)
}
