package runcmd

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestOutputCleanedAndCutBetweenCharacters(t *testing.T) {
	// 10 two-byte characters on two lines, with an escape sequence.
	out, err := Run(context.Background(), []string{"sh", "-c", `printf 'ééééé\n\033ééééé'; exit 3`}, 16)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("err %v, want exit 3", err)
	}
	if !utf8.ValidString(out) || len(out) > 16 || !strings.HasPrefix(out, "ééééé") || !strings.HasSuffix(out, "...") {
		t.Fatalf("output %q: want valid UTF-8, at most 16 bytes, cut with ...", out)
	}
}

func TestOutputBounded(t *testing.T) {
	out, err := Run(context.Background(), []string{"sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' a"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != MaxCapture {
		t.Fatalf("%d bytes of output kept, want %d", len(out), MaxCapture)
	}
}

// A command that leaves a child holding its output open is killed with
// its whole process group when the context ends: Run returns, and the
// child is gone (or a zombie waiting for its new parent to reap it).
func TestContextKillsTheProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, []string{"sh", "-c", "sleep 60 & echo $! > " + pidFile + "; wait"}, 0)
	if err == nil || ctx.Err() == nil {
		t.Fatalf("err %v after %v, want a killed command", err, ctx.Err())
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	stat := "/proc/" + strings.TrimSpace(string(b)) + "/stat"
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := os.ReadFile(stat)
		if err != nil || strings.Contains(string(s), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command's child outlived it: %s", s)
		}
		// No event tells a process's end to a non-parent: look again.
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEmptyCommand(t *testing.T) {
	if _, err := Run(context.Background(), nil, 0); err == nil {
		t.Fatal("no error for an empty command")
	}
}
