// Package window is the reboot window: weekly days and wall-clock hours in a
// time zone (--reboot-days, --start-time, --end-time, --time-zone). Pure: the
// decisions (pkg/controller/decide) use it without linking client-go.
package window

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Window is a weekly reboot window: on each of its days it opens at a wall
// clock time of its zone and lasts until the next end time, which is on
// the following day when the end is not after the start (a window that
// crosses midnight belongs to the day it opens on). The zero of a Window is
// not valid: use Parse.
//
// Daylight saving time: the window opens at the first instant whose wall
// clock on that day reads the start time or later, and closes at the first
// instant after that whose wall clock reads the end time or later. A start
// in the hour skipped in spring opens the window when the clocks jump (so
// it is shorter that day); a window wholly inside the skipped hour does not
// open that day; a window over the hour repeated in autumn lasts an hour
// longer (it is one interval, never split).
type Window struct {
	days       [7]bool // by time.Weekday
	start, end int     // seconds after midnight; end in (0, 86400]
	loc        *time.Location
	spec       string
}

// parseDay parses a week day: su, sun or sunday (any case), and so on.
func parseDay(s string) (time.Weekday, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	for d := time.Sunday; d <= time.Saturday; d++ {
		full := strings.ToLower(d.String())
		if s == full || s == full[:2] || s == full[:3] {
			return d, true
		}
	}
	return 0, false
}

// Error is a Parse error; Flag names the setting at fault
// (days, start, end or zone).
type Error struct {
	Flag string
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Window settings, the Flag of an Error.
const (
	Days  = "days"
	Start = "start"
	End   = "end"
	Zone  = "zone"
)

// Parse builds a window from its settings: days is a list of week
// days (su, mo, … or sun, mon, … or sunday, monday, …; case does not
// matter; empty means every day), start and end are wall clock times
// HH:MM or HH:MM:SS (end may be 24:00), zone an IANA time zone name (or
// "UTC", or "Local"). It returns nil, nil for a window that is always open
// (every day, 00:00 to 24:00).
func Parse(days []string, start, end, zone string) (*Window, error) {
	w := &Window{}
	if len(days) == 0 {
		for i := range w.days {
			w.days[i] = true
		}
	}
	var names []string
	for _, d := range days {
		wd, ok := parseDay(d)
		if !ok {
			return nil, &Error{Days, fmt.Errorf("unknown day %q: want su, mo, tu, we, th, fr, sa (or sun…sat, or sunday…saturday)", d)}
		}
		if !w.days[wd] {
			names = append(names, strings.ToLower(wd.String()[:2]))
		}
		w.days[wd] = true
	}
	var err error
	if w.start, err = parseClock(start, false); err != nil {
		return nil, &Error{Start, err}
	}
	if w.end, err = parseClock(end, true); err != nil {
		return nil, &Error{End, err}
	}
	if w.end%86400 == w.start {
		if w.end != 86400 || w.start != 0 {
			return nil, &Error{End, fmt.Errorf("end time %s equals the start time: a window has a length", end)}
		}
	}
	if w.loc, err = time.LoadLocation(zone); err != nil || zone == "" {
		if err == nil {
			err = fmt.Errorf("empty")
		}
		return nil, &Error{Zone, fmt.Errorf("unknown time zone %q (want an IANA name such as Europe/Berlin, or UTC): %v", zone, err)}
	}
	all := true
	for _, on := range w.days {
		all = all && on
	}
	if all && w.start == 0 && w.end == 86400 {
		return nil, nil
	}
	dayList := "every day"
	if !all {
		dayList = strings.Join(names, ",")
	}
	w.spec = fmt.Sprintf("%s %s-%s %s", dayList, formatClock(w.start), formatClock(w.end), w.loc)
	return w, nil
}

// parseClock parses HH:MM or HH:MM:SS into seconds after midnight; 24:00
// only if end.
func parseClock(s string, end bool) (int, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	bad := fmt.Errorf("invalid time %q: want HH:MM or HH:MM:SS (00:00 to 23:59:59%s)", s, map[bool]string{true: ", or 24:00", false: ""}[end])
	if len(parts) < 2 || len(parts) > 3 {
		return 0, bad
	}
	var v [3]int
	for i, p := range parts {
		if p == "" || len(p) > 2 {
			return 0, bad
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return 0, bad
		}
		v[i] = n
	}
	h, m, sec := v[0], v[1], v[2]
	if m > 59 || sec > 59 || h > 24 || (h == 24 && (!end || m != 0 || sec != 0)) {
		return 0, bad
	}
	return h*3600 + m*60 + sec, nil
}

func formatClock(s int) string {
	if s%60 != 0 {
		return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/3600, s/60%60)
}

// String describes the window, e.g. "mo,tu 22:00-04:00 Europe/Berlin".
func (w *Window) String() string {
	if w == nil {
		return "always"
	}
	return w.spec
}

// wallInstant returns the first instant whose wall clock in loc, on the
// given date, reads sec seconds after midnight or later (sec may be 86400:
// midnight at the end of the day).
func wallInstant(y int, m time.Month, d, sec int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, sec, 0, loc)
	want := time.Date(y, m, d, 0, 0, sec, 0, time.UTC)
	gy, gm, gd := t.Date()
	h, mi, s := t.Clock()
	got := time.Date(gy, gm, gd, h, mi, s, 0, time.UTC)
	start, end := t.ZoneBounds()
	if !got.Equal(want) {
		// The wall time does not exist (the clocks jump forward over
		// it); Date picked an instant on one side of the jump. The
		// first instant at or after the wall time is the jump.
		if got.Before(want) {
			return end
		}
		return start
	}
	// The wall time may exist twice (the clocks go back): the earlier is
	// in the zone before t's.
	if !start.IsZero() {
		_, offPrev := start.Add(-time.Nanosecond).Zone()
		_, offCur := t.Zone()
		if offPrev > offCur {
			if earlier := t.Add(-time.Duration(offPrev-offCur) * time.Second); earlier.Before(start) {
				return earlier
			}
		}
	}
	return t
}

// interval returns the window that opens on the given local date, if any.
func (w *Window) interval(y int, m time.Month, d int) (open, close time.Time, ok bool) {
	if !w.days[time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Weekday()] {
		return time.Time{}, time.Time{}, false
	}
	open = wallInstant(y, m, d, w.start, w.loc)
	endDay := d
	if w.end <= w.start {
		endDay++
	}
	close = wallInstant(y, m, endDay, w.end, w.loc)
	return open, close, close.After(open)
}

// Next returns the window that contains t, or else the next one to open
// after t: open <= t < close when t is inside a window.
func (w *Window) Next(t time.Time) (open, close time.Time) {
	y, m, d := t.In(w.loc).Date()
	// A window is at most a day (and an hour) long, so the one that
	// contains t opened yesterday at the earliest; a week later every
	// day has come round.
	for i := -1; i <= 8; i++ {
		o, c, ok := w.interval(y, m, d+i)
		if ok && c.After(t) {
			return o, c
		}
	}
	// Every listed day's window is empty (wholly in a skipped hour) this
	// week and next: practically impossible.
	return time.Time{}, time.Time{}
}

// Contains reports whether t is inside the window. A nil window is always
// open.
func (w *Window) Contains(t time.Time) bool {
	if w == nil {
		return true
	}
	o, c := w.Next(t)
	return !o.IsZero() && !t.Before(o) && t.Before(c)
}
