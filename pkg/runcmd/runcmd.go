// Package runcmd runs a command of the host (the sentinel command, the
// reboot command) the one way nodereboot runs one: no shell, in its own
// process group that is killed as a whole when the context ends, with its
// output bounded and cleaned for a message.
package runcmd

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
	"time"

	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

// MaxCapture bounds the output kept of one run (stdout and stderr
// together); the rest is read and dropped.
const MaxCapture = 64 << 10

// waitDelay is how long Run waits for the output to close after the
// command exited or was killed (a grandchild may hold it open).
const waitDelay = time.Second

// Run runs argv[0] with the arguments argv[1:] in a process group of its
// own. When ctx ends, the whole group is killed (SIGKILL). It returns the
// command's output on one line, cleaned by sanitize.Line and cut to at most
// max bytes between characters, and the error of exec.Cmd.Run (an
// *exec.ExitError for a non-zero exit or a signal).
func Run(ctx context.Context, argv []string, max int) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	var out capped
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return sanitize.Line(string(out.b), max), err
}

// capped keeps the first MaxCapture bytes written to it.
type capped struct{ b []byte }

func (c *capped) Write(p []byte) (int, error) {
	if room := MaxCapture - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
