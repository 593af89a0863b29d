package deploy

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	dopts "github.com/nodereboot/nodereboot/pkg/detector/options"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// stage is a FROM and what follows it.
type stage struct {
	name, image string
	insts       []instruction
}

// parseDockerfile splits a Dockerfile into its global ARGs and its stages.
// It handles what this project's Dockerfile uses: comments, parser
// directives, backslash continuations.
func parseDockerfile(t *testing.T, p string) (args map[string]string, stages []*stage) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var insts []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continuation
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, rest, _ := strings.Cut(cur.String(), " ")
		insts = append(insts, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(rest)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() > 0 {
		t.Fatalf("%s ends inside a continuation", p)
	}
	args = map[string]string{}
	for _, in := range insts {
		switch {
		case in.cmd == "FROM":
			fields := strings.Fields(in.args)
			fields = slices.DeleteFunc(fields, func(s string) bool { return strings.HasPrefix(s, "--platform=") })
			s := &stage{image: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
		case len(stages) == 0:
			if in.cmd != "ARG" {
				t.Fatalf("line %d: %s before the first FROM", in.line, in.cmd)
			}
			name, value, _ := strings.Cut(in.args, "=")
			args[name] = value
		default:
			stages[len(stages)-1].insts = append(stages[len(stages)-1].insts, in)
		}
	}
	return args, stages
}

var argRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

func expand(s string, args map[string]string) string {
	return argRef.ReplaceAllStringFunc(s, func(m string) string {
		return args[argRef.FindStringSubmatch(m)[1]]
	})
}

// imageFiles are the files the final stage puts into the image, from the
// COPY instructions that name them.
type imageFiles struct {
	paths []string
	path  []string // $PATH
	user  string
}

// TestDockerfile lints the Dockerfile (hadolint is not packaged for Debian:
// this is the linter) and checks that the image holds what the manifests
// run.
func TestDockerfile(t *testing.T) {
	args, stages := parseDockerfile(t, filepath.Join(root(t), "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	byName := map[string]*stage{}
	for _, s := range stages {
		byName[s.name] = s
		img := expand(s.image, args)
		if byName[img] != nil {
			continue // FROM an earlier stage
		}
		// Pinned: a tag that is not latest, or a digest.
		if !strings.Contains(img, "@sha256:") {
			_, tag, ok := strings.Cut(path.Base(img), ":")
			if !ok || tag == "" || tag == "latest" {
				t.Errorf("FROM %s (%s): pin the base image by a tag other than latest, or a digest", s.image, img)
			}
		}
	}
	for _, s := range stages {
		for _, in := range s.insts {
			switch in.cmd {
			case "ADD":
				t.Errorf("line %d: ADD; use COPY (ADD fetches URLs and unpacks archives)", in.line)
			case "MAINTAINER":
				t.Errorf("line %d: MAINTAINER is deprecated; use a LABEL", in.line)
			case "RUN":
				if strings.Contains(in.args, "apt-get install") && !strings.Contains(in.args, "--no-install-recommends") {
					t.Errorf("line %d: apt-get install without --no-install-recommends", in.line)
				}
				if strings.Contains(in.args, "curl ") || strings.Contains(in.args, "wget ") {
					t.Errorf("line %d: downloads in RUN; build from the context", in.line)
				}
			}
		}
	}

	// The build stage: static, trimmed, versioned binaries of both commands.
	var build string
	for _, s := range stages {
		for _, in := range s.insts {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				build = in.args
			}
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X github.com/nodereboot/nodereboot/pkg/version.Version=${VERSION}",
		"./cmd/nodereboot-detector", "./cmd/nodereboot-controller"} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build does not have %q: %s", want, build)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root(t), "pkg", "version", "version.go")); err != nil || !strings.Contains(string(b), "var Version ") {
		t.Errorf("pkg/version has no var Version for -X (%v)", err)
	}

	// The final stage.
	files, labels := dockerfileImage(t, stages)
	if files.user != "65532:65532" {
		t.Errorf("final USER %q, want 65532:65532 (non-root; the detector's manifest runs it as root)", files.user)
	}
	for _, l := range []string{"title", "description", "source", "version", "url"} {
		if _, ok := labels["org.opencontainers.image."+l]; !ok {
			t.Errorf("no LABEL org.opencontainers.image.%s", l)
		}
	}
	// nsenter is looked up in $PATH (options.HostMountNamespacePrefix).
	nsenter := dopts.HostMountNamespacePrefix[0]
	if !slices.ContainsFunc(files.path, func(dir string) bool { return slices.Contains(files.paths, path.Join(dir, nsenter)) }) {
		t.Errorf("%s is not in the image's PATH %v (image files %v)", nsenter, files.path, files.paths)
	}

	// Every manifest runs a binary the image has, the right one.
	variants := map[string]string{"kustomize base": mustKustomize(t), "helm defaults": mustHelmTemplate(t)}
	for _, c := range components {
		variants["kustomize +"+c] = mustKustomize(t, c)
	}
	for m, sets := range map[string][]string{"helm signal": {"detector.flags.reboot-method=signal"}, "helm dbus": {"detector.flags.reboot-method=dbus"}} {
		variants[m] = mustHelmTemplate(t, sets...)
	}
	for name, manifests := range variants {
		for _, o := range decode(t, manifests) {
			if o.GetKind() != "DaemonSet" && o.GetKind() != "Deployment" {
				continue
			}
			for _, c := range containers(t, o) {
				cmd, _, _ := unstructured.NestedStringSlice(c, "command")
				want := "/usr/local/bin/" + o.GetName()
				if len(cmd) != 1 || cmd[0] != want || !slices.Contains(files.paths, cmd[0]) {
					t.Errorf("%s: %s container %v runs %q; want [%s], which the image has (%v)", name, key(o), c["name"], cmd, want, files.paths)
				}
			}
		}
	}
}

// dockerfileImage is what the Dockerfile's final stage puts into the image:
// the files its COPY instructions name, USER, PATH and the OCI labels (their
// values unexpanded).
func dockerfileImage(t *testing.T, stages []*stage) (imageFiles, map[string]string) {
	t.Helper()
	byName := map[string]*stage{}
	for _, s := range stages {
		byName[s.name] = s
	}
	final := stages[len(stages)-1]
	files := imageFiles{}
	labels := map[string]string{}
	for _, in := range final.insts {
		switch in.cmd {
		case "USER":
			files.user = in.args
		case "ENV":
			if v, ok := strings.CutPrefix(in.args, "PATH="); ok {
				files.path = strings.Split(v, ":")
			}
		case "LABEL":
			for _, m := range regexp.MustCompile(`(org\.opencontainers\.image\.[a-z.]+)="([^"]*)"`).FindAllStringSubmatch(in.args, -1) {
				labels[m[1]] = m[2]
			}
		case "ENTRYPOINT", "CMD":
			t.Errorf("line %d: %s; the manifests name the binary (one image, two binaries)", in.line, in.cmd)
		case "COPY":
			fields := strings.Fields(in.args)
			from := ""
			if v, ok := strings.CutPrefix(fields[0], "--from="); ok {
				from, fields = v, fields[1:]
			}
			srcs, dst := fields[:len(fields)-1], fields[len(fields)-1]
			for _, src := range srcs {
				switch {
				case from == "build" && strings.HasSuffix(dst, "/"):
					files.paths = append(files.paths, dst+path.Base(src))
				case from == "nsenter" && src == "/out/" && dst == "/":
					// The nsenter stage copies /usr/bin/nsenter to /out/usr/bin/nsenter.
					for _, i := range byName["nsenter"].insts {
						if i.cmd == "RUN" && strings.Contains(i.args, "cp /usr/bin/nsenter /out/usr/bin/nsenter") {
							files.paths = append(files.paths, "/usr/bin/nsenter")
						}
					}
				default:
					t.Errorf("line %d: COPY %s: not understood by this test", in.line, in.args)
				}
			}
		}
	}
	return files, labels
}

// TestDockerignore: the build context holds what the Dockerfile copies and
// not the rest (bin/ alone is hundreds of MB).
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	// Docker's rule: the last matching pattern wins; "!" re-includes.
	included := func(p string) bool {
		in := true
		for _, pat := range patterns {
			neg := strings.HasPrefix(pat, "!")
			pat = strings.TrimSuffix(strings.TrimPrefix(pat, "!"), "/")
			match := false
			if rest, ok := strings.CutPrefix(pat, "**/"); ok {
				for q := p; q != "." && q != "/"; q = filepath.Dir(q) {
					if m, _ := filepath.Match(rest, filepath.Base(q)); m {
						match = true
					}
				}
			} else {
				for q := p; q != "." && q != "/"; q = filepath.Dir(q) {
					if m, _ := filepath.Match(pat, q); m {
						match = true
					}
				}
			}
			if match {
				in = neg
			}
		}
		return in
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd/nodereboot-detector/main.go", "cmd/nodereboot-controller/main.go", "pkg/version/version.go", "pkg/detector/detector.go"} {
		if !included(p) {
			t.Errorf("%s is not in the build context", p)
		}
		if _, err := os.Stat(filepath.Join(root(t), p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"bin/kube-apiserver", "e2e/framework/cluster.go", ".git/HEAD", "pkg/detector/detector_test.go", "deploy/kustomization.yaml", "_output/x"} {
		if included(p) {
			t.Errorf("%s is in the build context", p)
		}
	}
}
