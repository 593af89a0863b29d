package reboot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/nodereboot/nodereboot/pkg/runcmd"
)

// Rebooter asks the host to reboot.
type Rebooter interface {
	// Reboot asks for a reboot and returns when the request was accepted
	// (nil) or refused (an error). It does not wait for the reboot.
	Reboot(ctx context.Context) error
}

// DefaultTimeout bounds one reboot request.
const DefaultTimeout = time.Minute

// Command reboots by running a command.
type Command struct {
	// Argv is the command and its arguments, already wrapped in nsenter when
	// it must run in the host's mount namespace.
	Argv []string
	// Timeout bounds the command (DefaultTimeout when zero).
	Timeout time.Duration
}

// Reboot runs the command; a non-zero exit is an error that quotes its output.
func (c Command) Reboot(ctx context.Context) error {
	if len(c.Argv) == 0 {
		return errors.New("empty reboot command")
	}
	ctx, cancel := context.WithTimeout(ctx, timeoutOr(c.Timeout))
	defer cancel()
	// On one line, control characters escaped, cut between characters.
	msg, err := runcmd.Run(ctx, c.Argv, 512)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		if msg != "" {
			return fmt.Errorf("reboot command %q failed: %w: %s", strings.Join(c.Argv, " "), err, msg)
		}
		return fmt.Errorf("reboot command %q failed: %w", strings.Join(c.Argv, " "), err)
	}
	return nil
}

// SIGRTMIN is Linux's first real-time signal as the C library numbers it
// (glibc reserves 32 and 33 for itself).
const SIGRTMIN = 34

// DefaultSignal is SIGRTMIN+5, which systemd handles as "start
// reboot.target" (an orderly reboot).
const DefaultSignal = syscall.Signal(SIGRTMIN + 5)

// Signal reboots by sending a signal to a process, normally PID 1.
type Signal struct {
	// PID receives the signal: 1 in production (with hostPID), a child
	// process in tests.
	PID int
	// Signal is sent (DefaultSignal when zero).
	Signal syscall.Signal
}

// Reboot sends the signal.
func (s Signal) Reboot(context.Context) error {
	sig := s.Signal
	if sig == 0 {
		sig = DefaultSignal
	}
	if s.PID <= 0 {
		return fmt.Errorf("invalid PID %d for the reboot signal", s.PID)
	}
	if err := unix.Kill(s.PID, sig); err != nil {
		return fmt.Errorf("send signal %d to PID %d: %w", int(sig), s.PID, err)
	}
	return nil
}

// DefaultSystemBusSocket is the system bus socket.
const DefaultSystemBusSocket = "/var/run/dbus/system_bus_socket"

// logind's names.
const (
	LogindService   = "org.freedesktop.login1"
	LogindPath      = dbus.ObjectPath("/org/freedesktop/login1")
	LogindInterface = "org.freedesktop.login1.Manager"
)

// DBus reboots by calling org.freedesktop.login1.Manager.Reboot(false) on the
// system bus. logind authorizes the caller with polkit: root is allowed.
type DBus struct {
	// Socket is the system bus socket (DefaultSystemBusSocket when empty).
	Socket string
	// Timeout bounds the connection and the call (DefaultTimeout when zero).
	Timeout time.Duration
}

// Reboot connects to the bus, calls Reboot and disconnects.
func (d DBus) Reboot(ctx context.Context) error {
	socket := d.Socket
	if socket == "" {
		socket = DefaultSystemBusSocket
	}
	ctx, cancel := context.WithTimeout(ctx, timeoutOr(d.Timeout))
	defer cancel()
	conn, err := dbus.Connect("unix:path="+socket, dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("connect to the system bus at %s: %w", socket, err)
	}
	defer conn.Close()
	// interactive=false: never wait for a password prompt.
	call := conn.Object(LogindService, LogindPath).CallWithContext(ctx, LogindInterface+".Reboot", 0, false)
	if call.Err != nil {
		return fmt.Errorf("call %s.Reboot: %w", LogindInterface, call.Err)
	}
	return nil
}

func timeoutOr(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}
