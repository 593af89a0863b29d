// Package sanitize makes text that comes from outside nodereboot (the
// sentinel's package list, the sentinel command's output, a Prometheus
// server's alert names and errors, annotations and events anybody can
// write) safe to show: in a node condition, an event, a notification or a
// terminal.
//
// Line is the one function every such path uses. It puts the text on one
// line (runs of white space become one space), escapes what a reader cannot
// see or that a terminal would obey (control characters C0, DEL and C1,
// Unicode format characters such as the bidirectional overrides, and bytes
// that are not UTF-8) and caps the length, cutting between characters and
// never inside an escape, with "..." to show the cut. Its output is valid
// UTF-8 without control characters, and Line is idempotent: cleaning clean
// text changes nothing, so a cleaned message compares equal to itself when
// it is cleaned again.
//
// Escapes are Go's: \x1b for an ASCII control character or a byte that is
// not UTF-8, \u009b for the others. A backslash is not escaped: the output
// is for people to read, not to be parsed back.
package sanitize
