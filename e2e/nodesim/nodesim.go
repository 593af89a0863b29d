package nodesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"

	"github.com/nodereboot/nodereboot/e2e/framework"
)

// PoweredOffAnnotation is set on a node while it is "rebooting"; the kwok
// stages of the local control plane leave such a node alone.
const PoweredOffAnnotation = "sim.nodereboot.io/powered-off"

// Config describes one simulated node's host.
type Config struct {
	// NodeName is the kwok node this host belongs to. It must exist.
	NodeName string
	// Dir holds the host's files; default a new temporary folder.
	Dir string
	// RebootDelay is how long the node stays down during a reboot.
	RebootDelay time.Duration
	// Agent, when set, gives the binary and arguments of the agent (the
	// detector) that runs on the host; it is started with the node and again
	// after every reboot.
	Agent func(n *Node) (path string, args []string)
	// InProcessAgent, instead of Agent, runs the agent as a goroutine of
	// this process (for benchmarks with hundreds of nodes): it must return
	// when ctx ends, which is how a reboot stops it.
	InProcessAgent func(ctx context.Context, n *Node)
	// LogDir receives the agent's log; default Dir.
	LogDir string
	// Requests, when set, is shared by many simulated hosts in one process
	// (inotify instances are limited per user); default a private one.
	Requests *RequestWatcher
}

// Reboot is one completed simulated reboot.
type Reboot struct {
	Node      string    `json:"node"`
	Requested time.Time `json:"requested"`
	Up        time.Time `json:"up"`
	OldBootID string    `json:"oldBootID"`
	NewBootID string    `json:"newBootID"`
}

// Node is a simulated host.
type Node struct {
	cfg    Config
	client kubernetes.Interface

	runDir, bootIDFile, requestFile, logFile string
	gateFile, gateScript                     string
	agent                                    *framework.Process

	mu       sync.Mutex
	bootID   string
	reboots  []Reboot
	changed  chan struct{} // closed and replaced on every completed reboot
	hang     chan struct{} // not nil: reboots stay down until it is closed
	bootHook func(n *Node) error

	requests, ownRequests *RequestWatcher
	inProcStop            func() // stops the running in-process agent

	cancel context.CancelFunc
	done   chan struct{}
}

func (n *Node) closeOwn() {
	if n.ownRequests != nil {
		n.ownRequests.Close()
	}
}

// Start starts a simulated host for a test and stops it when the test ends.
func Start(t testing.TB, c *framework.Cluster, cfg Config) *Node {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.LogDir == "" {
		cfg.LogDir = c.LogDir
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := New(ctx, c.Client, cfg)
	if err != nil {
		t.Fatalf("node simulator %s: %v", cfg.NodeName, err)
	}
	t.Cleanup(n.Stop)
	return n
}

// New sets up the host's files from the node's current boot ID, starts the
// agent and begins serving reboot requests. Stop ends it.
func New(ctx context.Context, client kubernetes.Interface, cfg Config) (*Node, error) {
	if cfg.Dir == "" {
		return nil, errors.New("nodesim: Config.Dir is required")
	}
	if cfg.LogDir == "" {
		cfg.LogDir = cfg.Dir
	}
	node, err := client.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:         cfg,
		client:      client,
		runDir:      filepath.Join(cfg.Dir, "run"),
		bootIDFile:  filepath.Join(cfg.Dir, "boot_id"),
		requestFile: filepath.Join(cfg.Dir, "reboot-request"),
		logFile:     filepath.Join(cfg.Dir, "reboots.log"),
		gateFile:    filepath.Join(cfg.Dir, "reboot-gate"),
		gateScript:  filepath.Join(cfg.Dir, "reboot.sh"),
		bootID:      node.Status.NodeInfo.BootID,
		changed:     make(chan struct{}),
		done:        make(chan struct{}),
	}
	if n.bootID == "" {
		n.bootID = string(uuid.NewUUID())
		if err := n.patchStatus(ctx, n.bootID, true); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(n.runDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(n.bootIDFile, []byte(n.bootID+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(n.gateScript, []byte(gateScript(n.gateFile, n.requestFile)), 0o755); err != nil {
		return nil, err
	}
	requests := cfg.Requests
	if requests == nil {
		if requests, err = NewRequestWatcher(); err != nil {
			return nil, err
		}
		n.ownRequests = requests
	}
	requested, err := requests.watch(n.requestFile)
	if err != nil {
		n.closeOwn()
		return nil, err
	}
	n.requests = requests
	if cfg.Agent != nil {
		path, args := cfg.Agent(n)
		n.agent = framework.NewProcess("agent-"+cfg.NodeName, path, args, cfg.LogDir)
		if err := n.agent.Start(); err != nil {
			requests.unwatch(n.requestFile)
			n.closeOwn()
			return nil, err
		}
	}
	n.startInProcess()
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go n.serve(runCtx, requested)
	return n, nil
}

func (n *Node) startInProcess() {
	if n.cfg.InProcessAgent == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.cfg.InProcessAgent(ctx, n)
	}()
	n.inProcStop = func() { cancel(); <-done }
}

func (n *Node) stopInProcess() {
	if n.inProcStop != nil {
		n.inProcStop()
		n.inProcStop = nil
	}
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.NodeName }

// RunDir is the folder standing for /var/run.
func (n *Node) RunDir() string { return n.runDir }

// SentinelPath is RunDir/reboot-required, the detector's default sentinel.
func (n *Node) SentinelPath() string { return filepath.Join(n.runDir, "reboot-required") }

// BootIDFile stands for /proc/sys/kernel/random/boot_id.
func (n *Node) BootIDFile() string { return n.bootIDFile }

// RebootCommand is a value for the detector's --reboot-command that asks
// this simulator for a reboot.
func (n *Node) RebootCommand() string { return "/usr/bin/touch " + n.requestFile }

// LogFile is the reboot log: one JSON object (a Reboot) per line, appended
// when the node is back.
func (n *Node) LogFile() string { return n.logFile }

// gateScript is the gated reboot command: while a FIFO stands at gate, the
// request waits for a line from it and is made only if the line is "go".
func gateScript(gate, request string) string {
	return `#!/bin/sh
# Reboot request of a simulated host (e2e/nodesim). While the FIFO ` + gate + `
# exists the request waits for one line from it: "go" makes it, anything else
# refuses it, as a reboot command killed before it ran.
if [ -p '` + gate + `' ]; then
  read -r answer < '` + gate + `' || answer=
  if [ "$answer" != go ]; then
    echo "reboot request refused by the test gate" >&2
    exit 1
  fi
fi
exec /usr/bin/touch '` + request + `'
`
}

// GatedRebootCommand is like RebootCommand, but the request can be held with
// ArmRebootGate and WaitHeldReboot: fault tests use it to stop a detector
// between its Rebooting event and the reboot request.
func (n *Node) GatedRebootCommand() string { return n.gateScript }

// ArmRebootGate makes the next request of GatedRebootCommand wait for a
// HeldReboot's Release.
func (n *Node) ArmRebootGate() error {
	if err := unix.Mkfifo(n.gateFile, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("reboot gate: %w", err)
	}
	return nil
}

// HeldReboot is a reboot request waiting at the armed gate.
type HeldReboot struct {
	n *Node
	w *os.File
}

// WaitHeldReboot returns once a reboot request waits at the armed gate (the
// detector has recorded its Rebooting event and runs its reboot command),
// or fails at ctx's end.
func (n *Node) WaitHeldReboot(ctx context.Context) (*HeldReboot, error) {
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		// Opening a FIFO for writing blocks until a reader opens it:
		// the request's `read`.
		f, err := os.OpenFile(n.gateFile, os.O_WRONLY, 0)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			return nil, fmt.Errorf("reboot gate: %w", o.err)
		}
		return &HeldReboot{n: n, w: o.f}, nil
	case <-ctx.Done():
		// Unblock the open with a reader of our own, then give up.
		if r, err := os.OpenFile(n.gateFile, os.O_RDONLY|unix.O_NONBLOCK, 0); err == nil {
			defer r.Close()
		}
		if o := <-ch; o.f != nil {
			o.f.Close()
		}
		return nil, fmt.Errorf("node %s: no reboot request at the gate: %w", n.Name(), ctx.Err())
	}
}

// Release answers the held request, proceed true lets it reboot, false
// refuses it (the command exits 1, as a reboot command killed before it
// ran), and removes the gate: later requests are not held.
func (h *HeldReboot) Release(proceed bool) error {
	answer := "no\n"
	if proceed {
		answer = "go\n"
	}
	_, err := h.w.WriteString(answer)
	if cerr := h.w.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(h.n.gateFile); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("reboot gate: %w", err)
	}
	return nil
}

// HangReboots makes the next reboots power the node off and never bring it
// back (a host stuck in its firmware), until UnhangReboots.
func (n *Node) HangReboots() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.hang == nil {
		n.hang = make(chan struct{})
	}
}

// UnhangReboots lets a hanging reboot complete.
func (n *Node) UnhangReboots() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.hang != nil {
		close(n.hang)
		n.hang = nil
	}
}

// SetBootHook runs hook at every boot, after the run folder was cleared and
// before the agent starts (nil removes it): a test puts the sentinel back
// right after a reboot with it.
func (n *Node) SetBootHook(hook func(n *Node) error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.bootHook = hook
}

// Agent is the agent's process, or nil without one; tests use it to kill
// the detector.
func (n *Node) Agent() *framework.Process { return n.agent }

// BootID is the current boot ID.
func (n *Node) BootID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bootID
}

// CreateSentinel creates the sentinel, as a package manager does.
func (n *Node) CreateSentinel() error {
	return os.WriteFile(n.SentinelPath(), nil, 0o644)
}

// RemoveSentinel removes the sentinel.
func (n *Node) RemoveSentinel() error {
	err := os.Remove(n.SentinelPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Reboots returns the completed reboots so far.
func (n *Node) Reboots() []Reboot {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Reboot(nil), n.reboots...)
}

// WaitForReboots waits until at least count reboots have completed.
func (n *Node) WaitForReboots(ctx context.Context, count int) ([]Reboot, error) {
	for {
		n.mu.Lock()
		got, changed := len(n.reboots), n.changed
		n.mu.Unlock()
		if got >= count {
			return n.Reboots(), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return n.Reboots(), fmt.Errorf("node %s: %d of %d reboots: %w", n.Name(), got, count, ctx.Err())
		}
	}
}

// Stop stops serving reboots and stops the agent.
func (n *Node) Stop() {
	n.cancel()
	<-n.done
	n.requests.unwatch(n.requestFile)
	n.closeOwn()
	if n.agent != nil {
		n.agent.Stop(5 * time.Second)
	}
	n.stopInProcess()
}

func (n *Node) serve(ctx context.Context, requested <-chan struct{}) {
	defer close(n.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-requested:
			if _, err := os.Stat(n.requestFile); err != nil {
				continue // already handled
			}
			if err := n.reboot(ctx); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "nodesim %s: reboot: %v\n", n.Name(), err)
			}
		}
	}
}

// reboot performs one simulated reboot.
func (n *Node) reboot(ctx context.Context) error {
	requested := time.Now()
	_ = os.Remove(n.requestFile)
	if n.agent != nil {
		n.agent.Stop(5 * time.Second) // systemd stops services before rebooting
	}
	n.stopInProcess()
	// Requests made while the host was already going down are moot, as a
	// second `systemctl reboot` during shutdown is: one request, one reboot.
	_ = os.Remove(n.requestFile)
	old := n.BootID()
	if err := n.patchPoweredOff(ctx, true); err != nil {
		return err
	}
	if err := n.patchStatus(ctx, old, false); err != nil {
		return err
	}
	newID := string(uuid.NewUUID())
	if err := os.RemoveAll(n.runDir); err != nil {
		return err
	}
	if err := os.MkdirAll(n.runDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(n.bootIDFile, []byte(newID+"\n"), 0o644); err != nil {
		return err
	}
	select { // the machine is down for RebootDelay: simulated time passing
	case <-time.After(n.cfg.RebootDelay):
	case <-ctx.Done():
		return ctx.Err()
	}
	n.mu.Lock()
	hang, hook := n.hang, n.bootHook
	n.mu.Unlock()
	if hang != nil { // stuck until UnhangReboots
		select {
		case <-hang:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if hook != nil {
		if err := hook(n); err != nil {
			return fmt.Errorf("boot hook: %w", err)
		}
	}
	if err := n.patchStatus(ctx, newID, true); err != nil {
		return err
	}
	if err := n.patchPoweredOff(ctx, false); err != nil {
		return err
	}
	n.mu.Lock()
	n.bootID = newID
	n.mu.Unlock()
	if n.agent != nil {
		if err := n.agent.Start(); err != nil {
			return err
		}
	}
	n.startInProcess()
	r := Reboot{Node: n.Name(), Requested: requested, Up: time.Now(), OldBootID: old, NewBootID: newID}
	if line, err := json.Marshal(r); err == nil {
		if f, err := os.OpenFile(n.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			fmt.Fprintln(f, string(line))
			f.Close()
		}
	}
	n.mu.Lock()
	n.reboots = append(n.reboots, r)
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
	return nil
}

// retry runs a write of the simulated host until it succeeds, as a kubelet
// keeps posting its status: a reboot does not wait for the API server, and
// a write that fails while it is down is made once it is back.
func retry(ctx context.Context, write func(context.Context) error) error {
	delay := 100 * time.Millisecond
	for {
		err := write(ctx)
		if err == nil || apierrors.IsNotFound(err) {
			return err // a deleted node stays deleted
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (n *Node) patchPoweredOff(ctx context.Context, on bool) error {
	return retry(ctx, func(ctx context.Context) error { return n.writePoweredOff(ctx, on) })
}

func (n *Node) writePoweredOff(ctx context.Context, on bool) error {
	var value any // JSON null removes the annotation
	if on {
		value = "true"
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{PoweredOffAnnotation: value}}})
	_, err := n.client.CoreV1().Nodes().Patch(ctx, n.Name(), types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// patchStatus writes the boot ID and the Ready condition as a kubelet would,
// until it succeeds.
func (n *Node) patchStatus(ctx context.Context, bootID string, ready bool) error {
	return retry(ctx, func(ctx context.Context) error { return n.writeStatus(ctx, bootID, ready) })
}

func (n *Node) writeStatus(ctx context.Context, bootID string, ready bool) error {
	now := metav1.Now()
	cond := corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionFalse,
		Reason: "KubeletNotReady", Message: "node is rebooting (simulated)",
		LastHeartbeatTime: now, LastTransitionTime: now,
	}
	if ready {
		cond.Status, cond.Reason, cond.Message = corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status (simulated)"
	}
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{
		"nodeInfo":   map[string]any{"bootID": bootID},
		"conditions": []corev1.NodeCondition{cond},
	}})
	_, err := n.client.CoreV1().Nodes().Patch(ctx, n.Name(), types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

// ReadyCondition returns the node's Ready condition, if any.
func ReadyCondition(node *corev1.Node) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}
