package reboot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

const signalChildEnv = "NODEREBOOT_TEST_SIGNAL_CHILD"

// TestMain doubles as a helper process: with signalChildEnv set, the test
// binary waits for DefaultSignal and says so on stdout.
func TestMain(m *testing.M) {
	if os.Getenv(signalChildEnv) == "1" {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, DefaultSignal)
		fmt.Println("ready")
		select {
		case s := <-ch:
			fmt.Printf("received %d\n", int(s.(syscall.Signal)))
			os.Exit(0)
		case <-time.After(30 * time.Second):
			fmt.Println("timeout")
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "reboots")
	ok := Command{Argv: []string{"sh", "-c", "echo rebooting >> " + log}}
	if err := ok.Reboot(context.Background()); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	if b, err := os.ReadFile(log); err != nil || string(b) != "rebooting\n" {
		t.Fatalf("the command did not run once: %q, %v", b, err)
	}

	failing := Command{Argv: []string{"sh", "-c", "echo Failed to connect to bus >&2; exit 1"}}
	err := failing.Reboot(context.Background())
	if err == nil || !strings.Contains(err.Error(), "exit status 1") || !strings.Contains(err.Error(), "Failed to connect to bus") {
		t.Fatalf("failing command: %v, want the exit status and output", err)
	}

	// The output is quoted on one line, escaped, and cut between
	// characters (here: 300 two-byte characters, 600 bytes).
	noisy := Command{Argv: []string{"sh", "-c", `printf '\033[2Jbus\n'; for i in $(seq 300); do printf 'é'; done; exit 1`}}
	err = noisy.Reboot(context.Background())
	if msg := err.Error(); !strings.Contains(msg, `: \x1b[2Jbus éé`) || !strings.HasSuffix(msg, "é...") || !utf8.ValidString(msg) {
		t.Fatalf("noisy command: %q", msg)
	}

	if err := (Command{Argv: []string{"/nonexistent/systemctl", "reboot"}}).Reboot(context.Background()); err == nil {
		t.Fatal("missing binary: no error")
	}
	if err := (Command{}).Reboot(context.Background()); err == nil {
		t.Fatal("empty command: no error")
	}

	start := time.Now()
	err = Command{Argv: []string{"sleep", "60"}, Timeout: 200 * time.Millisecond}.Reboot(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging command: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a 200ms timeout took %v", d)
	}
}

func TestSignal(t *testing.T) {
	if DefaultSignal != syscall.Signal(39) {
		t.Fatalf("DefaultSignal = %d, want SIGRTMIN+5 = 39", DefaultSignal)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), signalChildEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("child said %q, want %q", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("child did not say %q", want)
		}
	}
	expect("ready")
	if err := (Signal{PID: cmd.Process.Pid}).Reboot(context.Background()); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	expect("received 39")

	if err := (Signal{PID: 0}).Reboot(context.Background()); err == nil {
		t.Fatal("PID 0: no error")
	}
}

func TestSignalNoSuchProcess(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	// The PID of a reaped child is free (and in a test run, not reused at once).
	err := Signal{PID: cmd.Process.Pid, Signal: syscall.SIGCONT}.Reboot(context.Background())
	if !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("signal to a gone process: %v, want ESRCH", err)
	}
}
