package window

import (
	"errors"
	"testing"
	"time"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustWindow(t *testing.T, days []string, start, end, zone string) *Window {
	t.Helper()
	w, err := Parse(days, start, end, zone)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestParseWindowErrorsNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		days             []string
		start, end, zone string
		flag             string
	}{
		{[]string{"mo", "funday"}, "00:00", "24:00", "UTC", Days},
		{nil, "25:00", "24:00", "UTC", Start},
		{nil, "24:00", "23:00", "UTC", Start},
		{nil, "3pm", "23:00", "UTC", Start},
		{nil, "12:60", "23:00", "UTC", Start},
		{nil, "12", "23:00", "UTC", Start},
		{nil, "12:00:00:00", "23:00", "UTC", Start},
		{nil, "-1:00", "23:00", "UTC", Start},
		{nil, "01:00", "24:01", "UTC", End},
		{nil, "01:00", "", "UTC", End},
		{nil, "03:00", "03:00", "UTC", End},
		{nil, "00:00", "24:00", "Mars/Olympus_Mons", Zone},
		{nil, "00:00", "24:00", "", Zone},
	} {
		_, err := Parse(tc.days, tc.start, tc.end, tc.zone)
		var we *Error
		if !errors.As(err, &we) || we.Flag != tc.flag {
			t.Errorf("Parse(%v, %q, %q, %q) = %v, want an error about %s", tc.days, tc.start, tc.end, tc.zone, err, tc.flag)
		}
	}
}

func TestParseWindowAlwaysOpenIsNil(t *testing.T) {
	for _, days := range [][]string{nil, {"su", "mo", "tu", "we", "th", "fr", "sa"}} {
		w, err := Parse(days, "00:00", "24:00", "Europe/Berlin")
		if err != nil || w != nil {
			t.Errorf("%v: %v, %v; want nil, nil", days, w, err)
		}
		if !w.Contains(time.Now()) {
			t.Error("a nil window is not open")
		}
	}
	w := mustWindow(t, []string{"Monday", "TUE", "we"}, "9:00", "17:30:15", "UTC")
	if got := w.String(); got != "mo,tu,we 09:00-17:30:15 UTC" {
		t.Errorf("String() = %q", got)
	}
}

func TestWindow(t *testing.T) {
	utc := time.UTC
	berlin := mustZone(t, "Europe/Berlin")
	ny := mustZone(t, "America/New_York")
	lordHowe := mustZone(t, "Australia/Lord_Howe") // 30-minute DST
	at := func(loc *time.Location, y int, m time.Month, d, h, mi int) time.Time {
		return time.Date(y, m, d, h, mi, 0, 0, loc)
	}
	// 2026-11-25 is a Wednesday.
	for _, tc := range []struct {
		name             string
		days             []string
		start, end, zone string
		t                time.Time
		open             bool
		nextOpen         time.Time // the interval containing t, or the next
		nextClose        time.Time
	}{
		{name: "inside a day window", start: "09:00", end: "17:00", zone: "UTC",
			t: at(utc, 2026, 11, 25, 12, 0), open: true, nextOpen: at(utc, 2026, 11, 25, 9, 0), nextClose: at(utc, 2026, 11, 25, 17, 0)},
		{name: "start is inside", start: "09:00", end: "17:00", zone: "UTC",
			t: at(utc, 2026, 11, 25, 9, 0), open: true, nextOpen: at(utc, 2026, 11, 25, 9, 0), nextClose: at(utc, 2026, 11, 25, 17, 0)},
		{name: "end is outside: next day", start: "09:00", end: "17:00", zone: "UTC",
			t: at(utc, 2026, 11, 25, 17, 0), open: false, nextOpen: at(utc, 2026, 11, 26, 9, 0), nextClose: at(utc, 2026, 11, 26, 17, 0)},
		{name: "before the start: today", start: "09:00", end: "17:00", zone: "UTC",
			t: at(utc, 2026, 11, 25, 8, 59), open: false, nextOpen: at(utc, 2026, 11, 25, 9, 0), nextClose: at(utc, 2026, 11, 25, 17, 0)},
		{name: "crossing midnight, evening part", start: "22:00", end: "04:00", zone: "UTC",
			t: at(utc, 2026, 11, 25, 23, 0), open: true, nextOpen: at(utc, 2026, 11, 25, 22, 0), nextClose: at(utc, 2026, 11, 26, 4, 0)},
		{name: "crossing midnight, morning part belongs to the day before", start: "22:00", end: "04:00", zone: "UTC",
			t: at(utc, 2026, 11, 26, 3, 0), open: true, nextOpen: at(utc, 2026, 11, 25, 22, 0), nextClose: at(utc, 2026, 11, 26, 4, 0)},
		{name: "crossing midnight, day only Friday: Saturday morning is open", days: []string{"fr"}, start: "22:00", end: "04:00", zone: "UTC",
			t: at(utc, 2026, 11, 28, 3, 0), open: true, nextOpen: at(utc, 2026, 11, 27, 22, 0), nextClose: at(utc, 2026, 11, 28, 4, 0)},
		{name: "crossing midnight, day only Friday: Friday morning is closed", days: []string{"fr"}, start: "22:00", end: "04:00", zone: "UTC",
			t: at(utc, 2026, 11, 27, 3, 0), open: false, nextOpen: at(utc, 2026, 11, 27, 22, 0), nextClose: at(utc, 2026, 11, 28, 4, 0)},
		{name: "days: next listed day is next week", days: []string{"mo"}, start: "01:00", end: "02:00", zone: "UTC",
			t: at(utc, 2026, 11, 24, 1, 30), open: false, nextOpen: at(utc, 2026, 11, 30, 1, 0), nextClose: at(utc, 2026, 11, 30, 2, 0)},
		{name: "days: today is listed", days: []string{"we"}, start: "00:00", end: "24:00", zone: "UTC",
			t: at(utc, 2026, 11, 25, 23, 59), open: true, nextOpen: at(utc, 2026, 11, 25, 0, 0), nextClose: at(utc, 2026, 11, 26, 0, 0)},
		{name: "zone: Berlin is UTC+1 in winter", start: "02:00", end: "04:00", zone: "Europe/Berlin",
			t: at(utc, 2026, 11, 25, 1, 30), open: true, nextOpen: at(utc, 2026, 11, 25, 1, 0), nextClose: at(utc, 2026, 11, 25, 3, 0)},
		{name: "zone: the day is the zone's day", days: []string{"th"}, start: "00:00", end: "01:00", zone: "Europe/Berlin",
			t: at(utc, 2026, 11, 25, 23, 30), open: true, nextOpen: at(utc, 2026, 11, 25, 23, 0), nextClose: at(utc, 2026, 11, 26, 0, 0)},

		// Spring forward: New York 2026-03-08 02:00 EST -> 03:00 EDT.
		{name: "DST spring: start in the skipped hour opens at the jump", start: "02:30", end: "04:00", zone: "America/New_York",
			t: at(utc, 2026, 3, 8, 6, 59), open: false, nextOpen: at(utc, 2026, 3, 8, 7, 0), nextClose: at(utc, 2026, 3, 8, 8, 0)},
		{name: "DST spring: window wholly in the skipped hour does not open that day", start: "02:00", end: "02:45", zone: "America/New_York",
			t: at(ny, 2026, 3, 8, 1, 0), open: false, nextOpen: at(ny, 2026, 3, 9, 2, 0), nextClose: at(ny, 2026, 3, 9, 2, 45)},
		{name: "DST spring: a window over the jump is an hour shorter", start: "01:00", end: "04:00", zone: "America/New_York",
			t: at(ny, 2026, 3, 8, 3, 30), open: true, nextOpen: at(utc, 2026, 3, 8, 6, 0), nextClose: at(utc, 2026, 3, 8, 8, 0)},
		{name: "DST spring: the day after is normal", start: "02:30", end: "04:00", zone: "America/New_York",
			t: at(utc, 2026, 3, 9, 6, 0), open: false, nextOpen: at(utc, 2026, 3, 9, 6, 30), nextClose: at(utc, 2026, 3, 9, 8, 0)},

		// Fall back: New York 2026-11-01 02:00 EDT -> 01:00 EST.
		{name: "DST autumn: the repeated hour opens at its first occurrence", start: "01:30", end: "02:30", zone: "America/New_York",
			t: at(utc, 2026, 11, 1, 5, 0), open: false, nextOpen: at(utc, 2026, 11, 1, 5, 30), nextClose: at(utc, 2026, 11, 1, 7, 30)},
		{name: "DST autumn: one interval, not split by the repeat", start: "01:30", end: "02:30", zone: "America/New_York",
			t: at(utc, 2026, 11, 1, 6, 15), open: true, nextOpen: at(utc, 2026, 11, 1, 5, 30), nextClose: at(utc, 2026, 11, 1, 7, 30)},
		{name: "DST autumn: Berlin 2026-10-25 03:00 CEST -> 02:00 CET, window 02:00-03:00 is two hours", start: "02:00", end: "03:00", zone: "Europe/Berlin",
			t: at(utc, 2026, 10, 25, 1, 30), open: true, nextOpen: at(utc, 2026, 10, 25, 0, 0), nextClose: at(utc, 2026, 10, 25, 2, 0)},
		{name: "DST spring: Berlin 2026-03-29 02:00 -> 03:00, midnight-crossing window", start: "23:00", end: "03:00", zone: "Europe/Berlin",
			t: at(berlin, 2026, 3, 29, 3, 0), open: false, nextOpen: at(berlin, 2026, 3, 29, 23, 0), nextClose: at(berlin, 2026, 3, 30, 3, 0)},
		{name: "DST spring: Berlin, the night of the jump is an hour shorter", start: "23:00", end: "03:00", zone: "Europe/Berlin",
			t: at(utc, 2026, 3, 28, 23, 30), open: true, nextOpen: at(utc, 2026, 3, 28, 22, 0), nextClose: at(utc, 2026, 3, 29, 1, 0)},

		// Lord Howe: 2026-10-04 02:00 +1030 -> 02:30 +11.
		{name: "30-minute DST jump", start: "02:15", end: "03:00", zone: "Australia/Lord_Howe",
			t: at(lordHowe, 2026, 10, 4, 1, 0), open: false, nextOpen: at(utc, 2026, 10, 3, 15, 30), nextClose: at(utc, 2026, 10, 3, 16, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := mustWindow(t, tc.days, tc.start, tc.end, tc.zone)
			if got := w.Contains(tc.t); got != tc.open {
				t.Errorf("Contains(%s) = %t, want %t", tc.t.UTC(), got, tc.open)
			}
			o, c := w.Next(tc.t)
			if !o.Equal(tc.nextOpen) || !c.Equal(tc.nextClose) {
				t.Errorf("Next(%s) = [%s, %s), want [%s, %s)", tc.t.UTC(), o.UTC(), c.UTC(), tc.nextOpen.UTC(), tc.nextClose.UTC())
			}
		})
	}
}

// Walking a year minute by minute, Contains agrees with Next, and Next's
// opening is always a moment when the window opens.
func TestWindowNextAgreesWithContains(t *testing.T) {
	w := mustWindow(t, []string{"fr", "sa", "su"}, "01:30", "02:15", "America/New_York")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wasOpen := w.Contains(start.Add(-time.Minute))
	for tm := start; tm.Before(start.AddDate(1, 0, 0)); tm = tm.Add(15 * time.Minute) {
		open := w.Contains(tm)
		o, c := w.Next(tm)
		if open != (!tm.Before(o) && tm.Before(c)) {
			t.Fatalf("%s: Contains %t but Next [%s, %s)", tm, open, o, c)
		}
		if !open && !o.After(tm) {
			t.Fatalf("%s: closed but Next opens at %s", tm, o)
		}
		if open && !wasOpen && !o.After(tm.Add(-15*time.Minute)) {
			t.Fatalf("%s: opened, but Next says it opened at %s", tm, o)
		}
		wasOpen = open
	}
}
