package contract

import (
	"testing"
	"time"
)

func TestParseState(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    State
		wantErr bool
	}{
		{"", StateIdle, false},
		{"Draining", StateDraining, false},
		{"Authorized", StateAuthorized, false},
		{"Rebooted", StateRebooted, false},
		{"Failed", StateFailed, false},
		{"draining", "", true},
		{"Rebooting!", "", true},
	} {
		got, err := ParseState(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseState(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestTimeRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 25, 18, 0, 1, 0, time.FixedZone("X", 3600))
	got, err := ParseTime(FormatTime(now))
	if err != nil || !got.Equal(now) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	if _, err := ParseTime("yesterday"); err == nil {
		t.Fatal("ParseTime accepted garbage")
	}
}
