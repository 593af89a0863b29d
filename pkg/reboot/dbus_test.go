package reboot

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// busConfig is a dbus-daemon configuration that listens on one socket and
// allows everything.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow send_type="method_call"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// startBus starts a private dbus-daemon and returns its socket path.
func startBus(t *testing.T) string {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("dbus-daemon is not installed (Debian package dbus): skipping the D-Bus reboot test")
	}
	dir := t.TempDir()
	socket := filepath.Join(dir, "system_bus_socket")
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, socket)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+conf, "--print-address", "--nofork", "--nopidfile")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// The daemon prints its address once it listens.
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if !strings.Contains(a, socket) {
			t.Fatalf("dbus-daemon address %q, want one on %s", a, socket)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dbus-daemon did not print its address")
	}
	return socket
}

// fakeLogind stands in for systemd-logind's Manager and records the calls.
type fakeLogind struct {
	calls chan bool
	mu    sync.Mutex
	err   *dbus.Error
}

// Reboot is org.freedesktop.login1.Manager.Reboot(b interactive).
func (f *fakeLogind) Reboot(interactive bool) *dbus.Error {
	f.calls <- interactive
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func exportLogind(t *testing.T, socket string, f *fakeLogind) {
	t.Helper()
	conn, err := dbus.Connect("unix:path=" + socket)
	if err != nil {
		t.Fatalf("connect to the test bus: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.Export(f, LogindPath, LogindInterface); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(LogindService, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v, %v", LogindService, reply, err)
	}
}

func TestDBus(t *testing.T) {
	socket := startBus(t)

	// Nobody owns login1 yet: the call fails, and says why.
	err := DBus{Socket: socket, Timeout: 10 * time.Second}.Reboot(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Reboot") {
		t.Fatalf("Reboot without logind: %v, want an error", err)
	}

	f := &fakeLogind{calls: make(chan bool, 10)}
	exportLogind(t, socket, f)
	if err := (DBus{Socket: socket}).Reboot(context.Background()); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	select {
	case interactive := <-f.calls:
		if interactive {
			t.Fatal("Reboot(interactive=true); want false")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logind stand-in saw no call")
	}
	select {
	case <-f.calls:
		t.Fatal("logind stand-in saw a second call")
	default:
	}

	// logind refusing (polkit says no) is an error.
	f.mu.Lock()
	f.err = dbus.NewError("org.freedesktop.DBus.Error.AccessDenied", []any{"Interactive authentication required."})
	f.mu.Unlock()
	err = DBus{Socket: socket}.Reboot(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Interactive authentication required") {
		t.Fatalf("refused Reboot: %v, want the AccessDenied error", err)
	}
}

func TestDBusNoBus(t *testing.T) {
	err := DBus{Socket: filepath.Join(t.TempDir(), "nothing"), Timeout: 5 * time.Second}.Reboot(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connect to the system bus") {
		t.Fatalf("Reboot without a bus: %v", err)
	}
}
