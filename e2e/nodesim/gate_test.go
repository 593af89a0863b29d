package nodesim

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func gateNode(t *testing.T) *Node {
	t.Helper()
	dir := t.TempDir()
	n := &Node{
		cfg:         Config{NodeName: "gate"},
		gateFile:    filepath.Join(dir, "reboot-gate"),
		gateScript:  filepath.Join(dir, "reboot.sh"),
		requestFile: filepath.Join(dir, "reboot-request"),
	}
	if err := os.WriteFile(n.gateScript, []byte(gateScript(n.gateFile, n.requestFile)), 0o755); err != nil {
		t.Fatal(err)
	}
	return n
}

func requested(n *Node) bool {
	_, err := os.Stat(n.requestFile)
	return err == nil
}

// Without a gate the command requests the reboot at once.
func TestGatedRebootCommandOpen(t *testing.T) {
	n := gateNode(t)
	if out, err := exec.Command(n.GatedRebootCommand()).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !requested(n) {
		t.Fatal("no request")
	}
}

// An armed gate holds the request until it is released: refused, the
// command fails without a request; let through, it requests. The gate is
// gone after a release.
func TestGatedRebootCommandHeld(t *testing.T) {
	for _, proceed := range []bool{false, true} {
		n := gateNode(t)
		if err := n.ArmRebootGate(); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(n.GatedRebootCommand())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		held, err := n.WaitHeldReboot(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if requested(n) {
			t.Fatal("request made while held")
		}
		if err := held.Release(proceed); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		if proceed != (err == nil) || proceed != requested(n) {
			t.Fatalf("proceed=%v: command error %v, request made %v", proceed, err, requested(n))
		}
		if _, err := os.Stat(n.gateFile); !os.IsNotExist(err) {
			t.Fatalf("gate still there after the release: %v", err)
		}
	}
}

// Waiting for a request that never comes ends with the context.
func TestWaitHeldRebootTimeout(t *testing.T) {
	n := gateNode(t)
	if err := n.ArmRebootGate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := n.WaitHeldReboot(ctx); err == nil {
		t.Fatal("no error without a request")
	}
}
