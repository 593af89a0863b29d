// Command image-build writes a container image as an OCI archive (an OCI
// image layout in a tar file, what `ctr images import` and `skopeo copy
// oci-archive:` read) without a container engine: each --layer is a folder
// whose files become one layer, owned by root, with their modes, at time 0.
// `make image` runs it (docs/install.md, "Building the image without
// Docker"); it is a module of its own so that go-containerregistry never
// enters nodereboot's go.mod.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// list is a repeatable flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var layers, env, labels, entrypoint list
	out := flag.String("out", "", "the OCI archive to write (required)")
	ref := flag.String("ref", "", "the image's name, e.g. ghcr.io/nodereboot/nodereboot:v0.1.0 (required)")
	user := flag.String("user", "", "the image's USER")
	arch := flag.String("arch", "amd64", "the image's architecture")
	flag.Var(&layers, "layer", "a folder whose files make one layer (repeatable, first is lowest)")
	flag.Var(&env, "env", "an ENV entry NAME=VALUE (repeatable)")
	flag.Var(&labels, "label", "a LABEL entry KEY=VALUE (repeatable)")
	flag.Var(&entrypoint, "entrypoint", "one argument of the ENTRYPOINT (repeatable)")
	flag.Parse()
	if *out == "" || *ref == "" || len(layers) == 0 {
		fmt.Fprintln(os.Stderr, "image-build: --out, --ref and at least one --layer are required")
		os.Exit(2)
	}
	if err := build(*out, *ref, *user, *arch, layers, env, labels, entrypoint); err != nil {
		fmt.Fprintln(os.Stderr, "image-build:", err)
		os.Exit(1)
	}
}

func build(out, ref, user, arch string, dirs, env, labels, entrypoint []string) error {
	tag, err := name.NewTag(ref, name.WeakValidation)
	if err != nil {
		return fmt.Errorf("--ref: %w", err)
	}
	epoch := v1.Time{Time: time.Unix(0, 0).UTC()}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, d := range dirs {
		b, err := layerTar(d)
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
			tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return err
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{Created: epoch, CreatedBy: "image-build --layer " + filepath.Base(d)}})
		if err != nil {
			return err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", arch, epoch
	cf.Config.User, cf.Config.Env, cf.Config.Entrypoint = user, env, entrypoint
	cf.Config.Labels = map[string]string{}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return fmt.Errorf("--label %q: want KEY=VALUE", l)
		}
		cf.Config.Labels[k] = v
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}

	dir, err := os.MkdirTemp(filepath.Dir(out), ".image-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	// containerd names an imported image by io.containerd.image.name; the
	// OCI annotation holds the tag alone.
	if err := p.AppendImage(img, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}), layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          tag.Name(),
		"org.opencontainers.image.ref.name": tag.TagStr(),
	})); err != nil {
		return err
	}
	b, err := layerTar(dir)
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// layerTar is the tar of a folder's contents, reproducible: sorted, owned by
// root, time 0, no user or group names.
func layerTar(dir string) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err == nil && p != dir {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return nil, err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		h.ModTime, h.AccessTime, h.ChangeTime = time.Unix(0, 0), time.Time{}, time.Time{}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
