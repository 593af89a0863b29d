package realnode

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/nodereboot/nodereboot/e2e/framework"
)

//go:embed nodefiles
var nodeFiles embed.FS

// APIGuestAddress is where the VM reaches the API server: qemu's guestfwd
// connects this guest address to the API server's loopback port, and
// nothing else leaves the VM (restrict=on).
const APIGuestAddress = "10.0.2.100:6443"

// Ports inside the VM that the test reads through hostfwd on the machine's
// loopback: the boot ID, diagnostics for a failed test, the VM's clock.
const (
	bootIDPort = 7000
	diagPort   = 7001
	clockPort  = 7002
)

// NodeConfig is what the node's files are made from.
type NodeConfig struct {
	NodeName   string
	Token      string // the kubelet's static token
	CA         []byte // the API server's CA (PEM)
	PauseImage string
	// KubeVersion is only written into the kubelet unit's description.
	KubeVersion                                          string
	ShutdownGracePeriod, ShutdownGracePeriodCriticalPods string
}

// VMInputs are the files a node's disk is made of.
type VMInputs struct {
	Base    string   // the Debian 12 root filesystem (hack/vm/base.sh)
	NodeBin string   // kubelet, containerd, containerd-shim-runc-v2, ctr, runc, CNI plugins (make node-tools)
	Images  []string // OCI archives imported into containerd at every boot
}

var nodeBinaries = map[string]string{
	"kubelet": "usr/local/bin", "containerd": "usr/local/bin", "containerd-shim-runc-v2": "usr/local/bin",
	"ctr": "usr/local/bin", "runc": "usr/local/sbin",
	"bridge": "opt/cni/bin", "host-local": "opt/cni/bin", "loopback": "opt/cni/bin",
}

// enabledUnits are linked into their targets' .wants folders, as
// `systemctl enable` would.
var enabledUnits = map[string]string{
	"containerd.service": "multi-user.target", "node-images.service": "multi-user.target",
	"apiserver-dnat.service": "multi-user.target", "kubelet.service": "multi-user.target",
	"bootid.socket": "sockets.target", "diag.socket": "sockets.target", "clock.socket": "sockets.target",
}

// BuildDisk makes a raw ext4 disk image at path from the base root
// filesystem, the node's binaries, its images and its configuration, in a
// staging folder next to it. The kernel and initrd are returned from the
// base's /boot.
func BuildDisk(ctx context.Context, path string, in VMInputs, cfg NodeConfig) (kernel, initrd string, err error) {
	stage := path + ".root"
	if err := os.RemoveAll(stage); err != nil {
		return "", "", err
	}
	defer os.RemoveAll(stage)
	if out, err := exec.CommandContext(ctx, "cp", "-a", in.Base, stage).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("copy the base: %v: %s", err, out)
	}
	for name, dir := range nodeBinaries {
		if err := copyFile(filepath.Join(in.NodeBin, name), filepath.Join(stage, dir, name), 0o755); err != nil {
			return "", "", err
		}
	}
	for _, img := range in.Images {
		if err := copyFile(img, filepath.Join(stage, "opt/nodereboot/images", filepath.Base(img)), 0o644); err != nil {
			return "", "", err
		}
	}
	if err := writeNodeFiles(stage, cfg); err != nil {
		return "", "", err
	}
	for unit, target := range enabledUnits {
		wants := filepath.Join(stage, "etc/systemd/system", target+".wants")
		if err := os.MkdirAll(wants, 0o755); err != nil {
			return "", "", err
		}
		if err := os.Symlink("/etc/systemd/system/"+unit, filepath.Join(wants, unit)); err != nil {
			return "", "", err
		}
	}
	// systemd-networkd brings up the network (the base has no ifupdown).
	if err := enableSystemUnit(stage, "systemd-networkd.service", "multi-user.target"); err != nil {
		return "", "", err
	}
	// A machine ID made at first boot and kept: the node's identity does
	// not change across the reboot.
	_ = os.WriteFile(filepath.Join(stage, "etc/machine-id"), nil, 0o444)

	boots, _ := filepath.Glob(filepath.Join(stage, "boot", "vmlinuz-*"))
	if len(boots) != 1 {
		return "", "", fmt.Errorf("want one kernel in %s/boot, found %v", in.Base, boots)
	}
	version := strings.TrimPrefix(filepath.Base(boots[0]), "vmlinuz-")
	kernel, initrd = path+".vmlinuz", path+".initrd"
	if err := copyFile(boots[0], kernel, 0o644); err != nil {
		return "", "", err
	}
	if err := copyFile(filepath.Join(stage, "boot", "initrd.img-"+version), initrd, 0o644); err != nil {
		return "", "", err
	}
	_ = os.Remove(path)
	if err := exec.CommandContext(ctx, "truncate", "-s", "4G", path).Run(); err != nil {
		return "", "", err
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "root", "-d", stage, path).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("mkfs.ext4: %v: %s", err, out)
	}
	return kernel, initrd, nil
}

func enableSystemUnit(root, unit, target string) error {
	wants := filepath.Join(root, "etc/systemd/system", target+".wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	link := filepath.Join(wants, unit)
	_ = os.Remove(link)
	return os.Symlink("/lib/systemd/system/"+unit, link)
}

// writeNodeFiles renders nodefiles/ into root.
func writeNodeFiles(root string, cfg NodeConfig) error {
	data := struct {
		NodeConfig
		APIAddress, CAData string
	}{cfg, APIGuestAddress, base64.StdEncoding.EncodeToString(cfg.CA)}
	return fs.WalkDir(nodeFiles, "nodefiles", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := nodeFiles.ReadFile(p)
		if err != nil {
			return err
		}
		tmpl, err := template.New(p).Option("missingkey=error").Parse(string(b))
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if err := tmpl.Execute(&out, data); err != nil {
			return err
		}
		dst := filepath.Join(root, strings.TrimPrefix(p, "nodefiles/"))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, ".kubeconfig") {
			mode = 0o600
		}
		_ = os.Remove(dst)
		return os.WriteFile(dst, out.Bytes(), mode)
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// VM is a running qemu guest: software emulation (TCG, one vCPU; KVM hangs
// guests on this machine), a restricted user-mode network with one guestfwd
// to the API server and hostfwds from the machine's loopback to the boot-ID
// and diagnostics ports. The serial console is written to Console.
type VM struct {
	Name    string
	Console string
	Process *framework.Process

	bootIDAddr, diagAddr, clockAddr string
}

// StartVM boots the disk. apiPort is the API server's port on 127.0.0.1;
// proxyCmd is the command qemu runs for every guest connection to
// APIGuestAddress (its standard input and output are the connection).
func StartVM(name, dir, disk, kernel, initrd, proxyCmd string, memMiB int) (*VM, error) {
	ports, err := freeLoopbackPorts(3)
	if err != nil {
		return nil, err
	}
	vm := &VM{
		Name:       name,
		Console:    filepath.Join(dir, name+"-console.log"),
		bootIDAddr: "127.0.0.1:" + strconv.Itoa(ports[0]),
		diagAddr:   "127.0.0.1:" + strconv.Itoa(ports[1]),
		clockAddr:  "127.0.0.1:" + strconv.Itoa(ports[2]),
	}
	apiHost, apiPort, _ := net.SplitHostPort(APIGuestAddress)
	netdev := fmt.Sprintf("user,id=n0,restrict=on,guestfwd=tcp:%s:%s-cmd:%s,hostfwd=tcp:%s-:%d,hostfwd=tcp:%s-:%d,hostfwd=tcp:%s-:%d",
		apiHost, apiPort, strings.ReplaceAll(proxyCmd, ",", ",,"), vm.bootIDAddr, bootIDPort, vm.diagAddr, diagPort, vm.clockAddr, clockPort)
	args := []string{
		"-machine", "accel=tcg", "-cpu", "max", "-smp", "1", "-m", strconv.Itoa(memMiB),
		"-display", "none", "-monitor", "none", "-serial", "file:" + vm.Console,
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 root=/dev/vda rw quiet panic=-1",
		"-drive", "file=" + disk + ",format=raw,if=virtio",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0",
	}
	// nice: one vCPU of emulation must not starve the control plane.
	vm.Process = framework.NewProcess("qemu-"+name, "nice", append([]string{"-n", "10", "qemu-system-x86_64"}, args...), dir)
	if err := vm.Process.Start(); err != nil {
		return nil, err
	}
	return vm, nil
}

// BootID reads /proc/sys/kernel/random/boot_id inside the VM. It fails
// while the VM is down or booting (qemu accepts the connection on the
// machine and closes it when nothing listens in the guest).
func (vm *VM) BootID(ctx context.Context) (string, error) {
	b, err := vm.read(ctx, vm.bootIDAddr)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if len(id) != 36 {
		return "", fmt.Errorf("boot ID %q", id)
	}
	return id, nil
}

// ClockOffset reads the VM's clock and returns how far it is ahead of the
// machine's (negative: behind), give or take uncertainty: half the round
// trip (which includes systemd starting date(1) in the VM) of the fastest
// of three reads.
func (vm *VM) ClockOffset(ctx context.Context) (offset, uncertainty time.Duration, err error) {
	uncertainty = -1
	for range 3 {
		before := time.Now()
		b, rerr := vm.read(ctx, vm.clockAddr)
		after := time.Now()
		if rerr != nil {
			err = rerr
			continue
		}
		guest, perr := ParseClock(string(b))
		if perr != nil {
			return 0, 0, perr
		}
		if half := after.Sub(before) / 2; uncertainty < 0 || half < uncertainty {
			offset, uncertainty = guest.Sub(before.Add(half)), half
		}
	}
	if uncertainty < 0 {
		return 0, 0, err
	}
	return offset, uncertainty, nil
}

// ParseClock parses `date +%s.%N` (seconds since the epoch, nanoseconds).
func ParseClock(s string) (time.Time, error) {
	sec, nsec, ok := strings.Cut(strings.TrimSpace(s), ".")
	si, err1 := strconv.ParseInt(sec, 10, 64)
	ni, err2 := strconv.ParseInt(nsec, 10, 64)
	if !ok || err1 != nil || err2 != nil || len(nsec) != 9 {
		return time.Time{}, fmt.Errorf("clock %q: want seconds.nanoseconds", s)
	}
	return time.Unix(si, ni), nil
}

// Diagnostics is what the VM says about its units, for a failed test.
func (vm *VM) Diagnostics(ctx context.Context) string {
	b, err := vm.read(ctx, vm.diagAddr)
	if err != nil {
		return "diagnostics: " + err.Error()
	}
	return string(b)
}

func (vm *VM) read(ctx context.Context, addr string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	b, err := io.ReadAll(c)
	if len(b) == 0 && err == nil {
		err = errors.New("nothing listens in the guest")
	}
	return b, err
}

// ConsoleCount counts the lines of the serial console that contain s.
func (vm *VM) ConsoleCount(s string) int {
	b, _ := os.ReadFile(vm.Console)
	return bytes.Count(b, []byte(s))
}

// Stop powers the VM off (kills qemu).
func (vm *VM) Stop() { vm.Process.Stop(5 * time.Second) }

func freeLoopbackPorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
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

// ProxyStdio copies between standard input/output and a TCP connection to
// addr: the command qemu's guestfwd runs for each guest connection to the
// API server.
func ProxyStdio(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(c, os.Stdin); done <- struct{}{} }()
	go func() { _, _ = io.Copy(os.Stdout, c); done <- struct{}{} }()
	<-done
	return nil
}
