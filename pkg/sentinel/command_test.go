package sentinel

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

func TestCommandProbe(t *testing.T) {
	for _, tc := range []struct {
		name        string
		argv        []string
		timeout     time.Duration
		want        v1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		{"exit 0 means required", []string{"sh", "-c", "exit 0"}, 0, v1.ConditionTrue, ReasonCommandRequired, "exited 0"},
		{"exit 1 means not required", []string{"sh", "-c", "exit 1"}, 0, v1.ConditionFalse, ReasonCommandNotRequired, "exited 1"},
		{"exit 127 (not found through a shell or nsenter)", []string{"sh", "-c", "echo no such command >&2; exit 127"}, 0,
			v1.ConditionUnknown, ReasonCommandFailed, "exited 127 (want 0 for required, 1 for not required): no such command"},
		{"exit 2", []string{"sh", "-c", "exit 2"}, 0, v1.ConditionUnknown, ReasonCommandFailed, "exited 2"},
		{"binary not found", []string{"/nonexistent/check-reboot"}, 0, v1.ConditionUnknown, ReasonCommandFailed, "could not run"},
		{"killed by a signal", []string{"sh", "-c", "kill -9 $$"}, 0, v1.ConditionUnknown, ReasonCommandFailed, "killed by signal"},
		{"timeout", []string{"sh", "-c", "sleep 60; exit 0"}, 200 * time.Millisecond, v1.ConditionUnknown, ReasonCommandFailed, "timed out"},
		// The grandchild holds the output pipe open: the process group is killed.
		{"timeout with a grandchild", []string{"sh", "-c", "(sleep 60; echo late) & wait"}, 200 * time.Millisecond,
			v1.ConditionUnknown, ReasonCommandFailed, "timed out"},
		{"empty", nil, 0, v1.ConditionUnknown, ReasonCommandFailed, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got := CommandProbe{Argv: tc.argv, Timeout: tc.timeout}.Observe(context.Background())
			if got.Status != tc.want || got.Reason != tc.wantReason || !strings.Contains(got.Message, tc.wantMessage) {
				t.Errorf("Observe() = %v, want %s/%s containing %q", got, tc.want, tc.wantReason, tc.wantMessage)
			}
			if tc.timeout > 0 && time.Since(start) > 10*time.Second {
				t.Errorf("a %v timeout took %v", tc.timeout, time.Since(start))
			}
		})
	}
}

func TestClassifyExitNeverRequiredOnError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		ctxErr error
	}{
		{"deadline", nil, context.DeadlineExceeded},
		{"deadline with exit 0 racing", nil, context.DeadlineExceeded},
		{"cancelled", &exec.ExitError{}, context.Canceled},
		{"start error", errors.New("fork/exec: permission denied"), nil},
	} {
		if got := classifyExit("check", tc.err, tc.ctxErr, ""); got.Status != v1.ConditionUnknown {
			t.Errorf("%s: classifyExit = %v, want Unknown", tc.name, got)
		}
	}
}

// The command's output is quoted on one line, escaped and capped.
func TestCommandOutputSanitized(t *testing.T) {
	got := CommandProbe{Argv: []string{"sh", "-c", `printf 'a\033]0;owned\007\nb\302\233c\377'; exit 3`}}.Observe(context.Background())
	if !strings.HasSuffix(got.Message, `: a\x1b]0;owned\x07 b\u009bc\xff`) {
		t.Errorf("message %q", got.Message)
	}
	long := classifyExit("check", errors.New("fork/exec: no such file"), nil, strings.Repeat("\x1b", 1000))
	if i := strings.LastIndex(long.Message, ": "); i < 0 || len(long.Message[i+2:]) > maxOutput {
		t.Errorf("output not capped at %d bytes: %q", maxOutput, long.Message)
	}
}
