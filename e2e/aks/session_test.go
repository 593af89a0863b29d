package aks

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// session runs the page's shell blocks with bash in the repository's top
// folder, as one shell session: the variables a block sets (NODE=...) are
// there in the next blocks. Every block must be used once: done reports
// the ones the test forgot.
type session struct {
	t      *testing.T
	blocks map[string]block
	used   map[string]bool
	dir    string   // working directory: the repository
	env    []string // the session's environment, updated after each block
	state  string   // file the environment is written to after a block
}

func newSession(t *testing.T, blocks map[string]block, dir string, env []string) *session {
	return &session{t: t, blocks: blocks, used: map[string]bool{}, dir: dir, env: env,
		state: filepath.Join(t.TempDir(), "env")}
}

// block returns a marked block by name and marks it used.
func (s *session) block(name string) block {
	s.t.Helper()
	b, ok := s.blocks[name]
	if !ok {
		s.t.Fatalf("docs/aks.md has no block marked <!-- test: %s -->", name)
	}
	s.used[name] = true
	return b
}

// command is the bash command that runs a block with `set -a`, so that its
// assignments are exported, and writes the environment afterwards.
func (s *session) command(ctx context.Context, b block) *exec.Cmd {
	script := "set -euo pipefail -a\n" + b.Text + "env -0 > " + s.state + "\n"
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = s.dir, s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// run runs a shell block and returns its output (stdout and stderr); a
// failure fails the test.
func (s *session) run(ctx context.Context, name string) string {
	s.t.Helper()
	b := s.block(name)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := s.command(ctx, b)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	started := time.Now()
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("docs/aks.md:%d (%s):\n%s\nfailed: %v\n%s", b.Line, name, b.Text, err, out.String())
	}
	s.t.Logf("$ %s(%s, %s)\n%s", b.Text, name, time.Since(started).Round(time.Millisecond), out.String())
	s.load()
	return out.String()
}

// load reads the environment the last block left.
func (s *session) load() {
	s.t.Helper()
	raw, err := os.ReadFile(s.state)
	if err != nil {
		s.t.Fatalf("session environment: %v", err)
	}
	var env []string
	for _, kv := range strings.Split(string(raw), "\x00") {
		if kv != "" && !strings.HasPrefix(kv, "BASH_") && !strings.HasPrefix(kv, "SHLVL=") && !strings.HasPrefix(kv, "_=") {
			env = append(env, kv)
		}
	}
	s.env = env
}

// get returns a variable of the session.
func (s *session) get(name string) string {
	for _, kv := range s.env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// background is a block that runs until stopped (kubectl get -w).
type background struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func (b *background) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

// Output is what the block has written so far.
func (b *background) Output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// start starts a shell block in the background; stop ends it.
func (s *session) start(ctx context.Context, name string) *background {
	s.t.Helper()
	blk := s.block(name)
	bg := &background{done: make(chan error, 1)}
	bg.cmd = s.command(ctx, blk)
	bg.cmd.Stdout, bg.cmd.Stderr = bg, bg
	if err := bg.cmd.Start(); err != nil {
		s.t.Fatalf("docs/aks.md:%d (%s): %v", blk.Line, name, err)
	}
	go func() { bg.done <- bg.cmd.Wait() }()
	s.t.Cleanup(func() { bg.stop() })
	return bg
}

// stop kills the block's process group and waits for it; it reports an
// error if the block had ended before on its own.
func (b *background) stop() error {
	select {
	case err := <-b.done:
		b.done <- err
		return fmt.Errorf("ended early: %v", err)
	default:
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	err := <-b.done
	b.done <- err
	return nil
}

// unused lists the marked blocks the test did not use.
func (s *session) unused() []string {
	var out []string
	for name := range s.blocks {
		if !s.used[name] {
			out = append(out, name)
		}
	}
	return out
}
