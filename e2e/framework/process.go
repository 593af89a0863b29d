package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Process is one running binary of the control plane (or of a test), with
// its output appended to a log file. It runs in its own process group and is
// killed if the test binary dies.
type Process struct {
	Name    string
	Path    string
	Args    []string
	LogFile string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// NewProcess describes a process; Start runs it.
func NewProcess(name, path string, args []string, logDir string) *Process {
	return &Process{Name: name, Path: path, Args: args, LogFile: filepath.Join(logDir, name+".log")}
}

// Start starts the process. A process may be started again after Stop.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is already running", p.Name)
		}
	}
	logFile, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "==== %s starting: %s %q\n", time.Now().Format(time.RFC3339Nano), p.Path, p.Args)
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logFile, "==== %s exited: %v\n", time.Now().Format(time.RFC3339Nano), err)
		logFile.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// Pid returns the process ID, or 0 when it never started.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Exited is closed when the current run of the process ends.
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

// Running reports whether the process is running.
func (p *Process) Running() bool {
	select {
	case <-p.Exited():
		return false
	default:
		return true
	}
}

// Signal sends sig to the process's group.
func (p *Process) Signal(sig syscall.Signal) error {
	pid := p.Pid()
	if pid == 0 || !p.Running() {
		return errors.New(p.Name + " is not running")
	}
	return syscall.Kill(-pid, sig)
}

// Kill sends SIGKILL and waits for the process to go.
func (p *Process) Kill() {
	if p.Running() {
		_ = p.Signal(syscall.SIGKILL)
	}
	<-p.Exited()
}

// Stop sends SIGTERM, waits up to grace for the process to exit, then kills it.
func (p *Process) Stop(grace time.Duration) {
	if !p.Running() {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited():
	case <-time.After(grace):
		p.Kill()
	}
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment ago.
func freePorts(n int) ([]int, error) {
	// Hold all listeners open until every port is picked, so none repeats.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitFor calls check until it returns nil, the process exits, or ctx ends.
// It is for readiness of a freshly started process, which has no watch to
// offer: a short fixed interval is the only option.
func waitFor(ctx context.Context, p *Process, what string, check func(context.Context) error) error {
	var last error
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v (last error: %v; log: %s)", what, ctx.Err(), last, p.LogFile)
		case <-p.Exited():
			return fmt.Errorf("%s exited before it was ready (log: %s)", what, p.LogFile)
		case <-tick.C:
		}
	}
}

// WaitServing waits until a GET of url answers 200, the process exits, or
// ctx ends: for a freshly started process's own HTTP endpoints (metrics,
// probes), which have no watch to offer.
func WaitServing(ctx context.Context, p *Process, url string) error {
	return waitFor(ctx, p, p.Name+" "+url, httpOK(url, "", nil))
}
