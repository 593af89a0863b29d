package realnode

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/nodereboot/nodereboot/e2e/framework"
)

// proxyEnv makes the test binary the command of qemu's guestfwd: it copies
// its standard input and output to the API server's address and exits.
const proxyEnv = "NODEREBOOT_STDIO_TCP"

func TestMain(m *testing.M) {
	if addr := os.Getenv(proxyEnv); addr != "" {
		if err := ProxyStdio(addr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// inputs are what make test-node prepared: the VM's base root filesystem,
// the node's binaries and the images.
type inputs struct {
	root, bin, base, nodeBin, imageDir string
}

func needInputs(t *testing.T) inputs {
	t.Helper()
	if os.Getenv("NODEREBOOT_TEST_NODE") == "" {
		t.Skip("a real node in a VM takes minutes: make test-node (NODEREBOOT_TEST_NODE=1)")
	}
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := framework.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	in := inputs{root: root, bin: bin, base: os.Getenv("NODEREBOOT_VM_BASE"),
		nodeBin: filepath.Join(bin, "node"), imageDir: filepath.Join(root, "_output", "image")}
	if in.base == "" {
		bases, _ := filepath.Glob(filepath.Join(root, "_output", "vm", "base-*", ".done"))
		sort.Strings(bases)
		if len(bases) == 0 {
			t.Fatal("no VM base root filesystem in _output/vm: run make test-node")
		}
		in.base = filepath.Dir(bases[len(bases)-1])
	}
	for _, p := range []string{filepath.Join(in.nodeBin, "kubelet"), filepath.Join(in.imageDir, "nodereboot.oci.tar"),
		filepath.Join(in.imageDir, "pause.oci.tar"), filepath.Join(bin, "image-build"), filepath.Join(bin, "nodereboot-controller")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v: run make test-node", err)
		}
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 missing (apt-get install qemu-system-x86)")
	}
	return in
}

// imageName is the name an OCI archive's image is imported under.
func imageName(t *testing.T, archive string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no index.json: %v", archive, err)
		}
		if h.Name != "index.json" {
			continue
		}
		var index struct {
			Manifests []struct{ Annotations map[string]string }
		}
		b, _ := io.ReadAll(tr)
		if err := json.Unmarshal(b, &index); err != nil || len(index.Manifests) != 1 {
			t.Fatalf("%s: index.json: %v", archive, err)
		}
		return index.Manifests[0].Annotations["io.containerd.image.name"]
	}
}

// busyboxImage builds an image with Debian's static busybox (a shell for the
// pods that play unattended-upgrades and probe the host) into dir.
func busyboxImage(t *testing.T, in inputs, dir string) (archive, ref string) {
	t.Helper()
	src := "/bin/busybox"
	if _, err := os.Stat(src); err != nil {
		t.Fatal("busybox missing (apt-get install busybox-static)")
	}
	layer := filepath.Join(dir, "busybox-layer")
	if err := copyFile(src, filepath.Join(layer, "bin", "busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(layer, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	archive, ref = filepath.Join(dir, "busybox.oci.tar"), "localhost/nodereboot/busybox:1"
	out, err := exec.Command(filepath.Join(in.bin, "image-build"), "--out", archive, "--ref", ref, "--layer", layer).CombinedOutput()
	if err != nil {
		t.Fatalf("image-build busybox: %v: %s", err, out)
	}
	return archive, ref
}
