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

func TestConditionBootRoundTrip(t *testing.T) {
	const boot = "0f3c9a52-5d64-4b8e-9a51-0c2b7f6a1e01"
	msg := ConditionMessage("Sentinel /var/run/reboot-required is present", boot)
	if got, ok := ConditionBoot(msg); !ok || got != boot {
		t.Fatalf("ConditionBoot(%q) = %q, %v", msg, got, ok)
	}
	for _, m := range []string{"", "Sentinel is present", "x (boot ID )", "x (boot ID a b)", "(boot ID x", "NPD: kernel (boot ID in words here) says so"} {
		if got, ok := ConditionBoot(m); ok {
			t.Errorf("ConditionBoot(%q) = %q: a boot where none is named", m, got)
		}
	}
	if ConditionMessage("m", "") != "m" {
		t.Error("an empty boot changed the message")
	}
}
