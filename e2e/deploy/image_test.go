package deploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// ociImage is an image read from an OCI archive: its config and the files
// of its layers applied in order.
type ociImage struct {
	name   string // the index's io.containerd.image.name
	config struct {
		OS, Architecture string
		Config           struct {
			User       string
			Env        []string
			Entrypoint []string
			Cmd        []string
			Labels     map[string]string
		}
	}
	files map[string]*ociFile // by absolute path
}

type ociFile struct {
	mode int64
	link string // a symlink's target
	data []byte
}

// readOCIArchive reads an OCI image layout in a tar file with one image.
func readOCIArchive(t *testing.T, p string) *ociImage {
	t.Helper()
	blobs := map[string][]byte{}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		blobs[strings.TrimPrefix(h.Name, "./")] = b
	}
	if !strings.Contains(string(blobs["oci-layout"]), `"imageLayoutVersion"`) {
		t.Fatalf("%s: no oci-layout file: not an OCI image layout", p)
	}
	blob := func(digest string) []byte {
		algo, hex, _ := strings.Cut(digest, ":")
		b, ok := blobs["blobs/"+algo+"/"+hex]
		if !ok {
			t.Fatalf("%s: blob %s missing", p, digest)
		}
		return b
	}
	type descriptor struct {
		MediaType, Digest string
		Annotations       map[string]string
	}
	var index struct{ Manifests []descriptor }
	if err := json.Unmarshal(blobs["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("%s: index.json: want one manifest (%v): %s", p, err, blobs["index.json"])
	}
	var manifest struct {
		MediaType string
		Config    descriptor
		Layers    []descriptor
	}
	if err := json.Unmarshal(blob(index.Manifests[0].Digest), &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("%s: manifest media type %q", p, manifest.MediaType)
	}
	img := &ociImage{name: index.Manifests[0].Annotations["io.containerd.image.name"], files: map[string]*ociFile{}}
	if err := json.Unmarshal(blob(manifest.Config.Digest), &img.config); err != nil {
		t.Fatal(err)
	}
	for _, l := range manifest.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(blob(l.Digest)))
		if err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		lr := tar.NewReader(zr)
		for {
			h, err := lr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
			if h.Uid != 0 || h.Gid != 0 {
				t.Errorf("layer %s: %s is owned by %d:%d, want root", l.Digest, h.Name, h.Uid, h.Gid)
			}
			b, err := io.ReadAll(lr)
			if err != nil {
				t.Fatal(err)
			}
			img.files[path.Clean("/"+h.Name)] = &ociFile{mode: h.Mode, link: h.Linkname, data: b}
		}
	}
	return img
}

// resolve follows symlinks inside the image.
func (img *ociImage) resolve(p string) (*ociFile, bool) {
	for range 10 {
		f, ok := img.files[p]
		if !ok || f.link == "" {
			return f, ok
		}
		if path.IsAbs(f.link) {
			p = f.link
		} else {
			p = path.Join(path.Dir(p), f.link)
		}
	}
	return nil, false
}

// makeImage runs `make image` into a new folder and returns it.
func makeImage(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "image", "IMAGE_DIR="+dir, "VERSION="+version,
		"IMAGE=ghcr.io/nodereboot/nodereboot:"+version)
	cmd.Dir = root(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	return dir
}

// TestImage: the image `make image` writes without a container engine is the
// Dockerfile's image: the files the Dockerfile copies at the same paths,
// static binaries, nsenter with every library it links, the same USER,
// PATH and labels, no ENTRYPOINT. And the pause image the real node's
// runtime uses runs its one file.
func TestImage(t *testing.T) {
	const version = "v0.0.0-imagetest"
	dir := makeImage(t, version)
	img := readOCIArchive(t, filepath.Join(dir, "nodereboot.oci.tar"))
	args, stages := parseDockerfile(t, filepath.Join(root(t), "Dockerfile"))
	args["VERSION"] = version
	want, labels := dockerfileImage(t, stages)

	if img.name != "ghcr.io/nodereboot/nodereboot:"+version {
		t.Errorf("image name %q", img.name)
	}
	cfg := img.config.Config
	if img.config.OS != "linux" || img.config.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", img.config.OS, img.config.Architecture)
	}
	if cfg.User != want.user {
		t.Errorf("USER %q, the Dockerfile's is %q", cfg.User, want.user)
	}
	if wantPath := "PATH=" + strings.Join(want.path, ":"); !slices.Contains(cfg.Env, wantPath) {
		t.Errorf("ENV %v, the Dockerfile sets %s", cfg.Env, wantPath)
	}
	if len(cfg.Entrypoint) != 0 || len(cfg.Cmd) != 0 {
		t.Errorf("ENTRYPOINT %q CMD %q, want none", cfg.Entrypoint, cfg.Cmd)
	}
	for k, v := range labels {
		if w := expand(v, args); cfg.Labels[k] != w {
			t.Errorf("LABEL %s=%q, the Dockerfile's is %q", k, cfg.Labels[k], w)
		}
	}
	if len(cfg.Labels) != len(labels) {
		t.Errorf("labels %v, the Dockerfile's %v", cfg.Labels, labels)
	}

	for _, p := range want.paths {
		f, ok := img.resolve(p)
		if !ok {
			t.Errorf("%s: not in the image", p)
			continue
		}
		if f.mode&0o111 == 0 {
			t.Errorf("%s: mode %o, not executable", p, f.mode)
		}
		e, err := elf.NewFile(bytes.NewReader(f.data))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		interp := interpreter(e)
		needed, _ := e.ImportedLibraries()
		if strings.HasPrefix(p, "/usr/local/bin/") {
			// CGO_ENABLED=0, as the Dockerfile builds them.
			if interp != "" || len(needed) > 0 {
				t.Errorf("%s: dynamically linked (%s %v), want static", p, interp, needed)
			}
			continue
		}
		// nsenter: its loader and every library resolve in the image.
		if interp == "" {
			t.Errorf("%s: no ELF interpreter", p)
		} else if _, ok := img.resolve(interp); !ok {
			t.Errorf("%s: its loader %s is not in the image", p, interp)
		}
		for _, lib := range needed {
			if _, ok := img.resolve("/lib/x86_64-linux-gnu/" + lib); ok {
				continue
			}
			if _, ok := img.resolve("/usr/lib/x86_64-linux-gnu/" + lib); !ok {
				t.Errorf("%s needs %s, which is in neither of the loader's folders", p, lib)
			}
		}
	}
	// The user the image runs as exists (distroless's nonroot).
	uid, _, _ := strings.Cut(want.user, ":")
	if pw, ok := img.files["/etc/passwd"]; !ok || !strings.Contains(string(pw.data), ":"+uid+":") {
		t.Errorf("/etc/passwd has no user %s", uid)
	}
	if tmp, ok := img.files["/tmp"]; !ok || tmp.mode&0o1777 != 0o1777 {
		t.Errorf("/tmp missing or not 1777")
	}

	pause := readOCIArchive(t, filepath.Join(dir, "pause.oci.tar"))
	ep := pause.config.Config.Entrypoint
	if len(ep) != 1 {
		t.Fatalf("pause ENTRYPOINT %q", ep)
	}
	if f, ok := pause.resolve(ep[0]); !ok || f.mode&0o111 == 0 {
		t.Errorf("pause: %s is not an executable in the image", ep[0])
	} else if e, err := elf.NewFile(bytes.NewReader(f.data)); err != nil || interpreter(e) != "" {
		t.Errorf("pause: %s is not a static ELF binary (%v)", ep[0], err)
	}
	if len(pause.files) != 1 {
		t.Errorf("pause image holds %d files, want its one binary", len(pause.files))
	}
}

// interpreter is an ELF file's PT_INTERP, "" for a static binary.
func interpreter(e *elf.File) string {
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(p.Open())
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}
