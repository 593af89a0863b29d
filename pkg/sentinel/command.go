package sentinel

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/pkg/runcmd"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

// maxOutput bounds the command output quoted in a message (cleaned by
// sanitize.Line: on one line, control characters escaped).
const maxOutput = 256

// CommandProbe observes by running a command: exit code 0 means a reboot is
// required, 1 means it is not, and anything else (not found, killed by a
// signal, timed out, another exit code) is Unknown, never "required".
type CommandProbe struct {
	// Argv is the command and its arguments (no shell is involved).
	Argv []string
	// Timeout bounds one run; the command and everything it started (its
	// process group) is killed after it.
	Timeout time.Duration
}

// Observe runs the command once.
func (p CommandProbe) Observe(ctx context.Context) Observation {
	if len(p.Argv) == 0 {
		return Observation{Status: v1.ConditionUnknown, Reason: ReasonCommandFailed, Message: "Sentinel command is empty"}
	}
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	out, err := runcmd.Run(ctx, p.Argv, maxOutput)
	return classifyExit(strings.Join(p.Argv, " "), err, ctx.Err(), out)
}

// classifyExit turns the result of running the command into an observation.
// ctxErr is the context's error after the run (a timeout kills the command).
func classifyExit(command string, err, ctxErr error, output string) Observation {
	failed := func(format string, args ...any) Observation {
		msg := fmt.Sprintf("Sentinel command %q ", command) + fmt.Sprintf(format, args...)
		if o := sanitize.Line(output, maxOutput); o != "" {
			msg += ": " + o
		}
		return Observation{Status: v1.ConditionUnknown, Reason: ReasonCommandFailed, Message: msg}
	}
	if ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return failed("timed out")
		}
		return failed("was cancelled")
	}
	if err == nil {
		return Observation{Status: v1.ConditionTrue, Reason: ReasonCommandRequired,
			Message: fmt.Sprintf("Sentinel command %q exited 0: reboot required", command)}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return failed("could not run: %v", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return failed("was killed by signal %s", ws.Signal())
	}
	switch code := ee.ExitCode(); code {
	case 1:
		return Observation{Status: v1.ConditionFalse, Reason: ReasonCommandNotRequired,
			Message: fmt.Sprintf("Sentinel command %q exited 1: reboot not required", command)}
	default:
		return failed("exited %d (want 0 for required, 1 for not required)", code)
	}
}
