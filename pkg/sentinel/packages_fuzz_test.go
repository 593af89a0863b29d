package sentinel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzPackages: whatever a .pkgs file holds, the package list has no empty,
// untrimmed or repeated entries, and the message built from it fits in
// MaxPackagesMessage bytes, is valid UTF-8 and holds no control character.
func FuzzPackages(f *testing.F) {
	f.Add("linux-image-6.1.0-30-amd64\nlibc6\n")
	f.Add("libc6\nlibc6\n  \n\tdbus \r\n")
	f.Add(strings.Repeat("linux-image-6.1.0-30-amd64\n", 50))
	f.Add(strings.Repeat("p", 300))
	f.Add(strings.Repeat("é", 150) + "\nx\n")
	f.Add(strings.Repeat("é", 150))
	f.Add("")
	f.Add("evil\x1b]0;owned\a\n\xff\xfe\u202e\n")
	f.Fuzz(func(t *testing.T, content string) {
		path := filepath.Join(t.TempDir(), "reboot-required.pkgs")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		pkgs, err := readPackages(path)
		if err != nil {
			t.Fatalf("readPackages of a regular file: %v", err)
		}
		seen := map[string]bool{}
		for _, p := range pkgs {
			if p == "" || p != strings.TrimSpace(p) || seen[p] {
				t.Fatalf("package %q in %q", p, pkgs)
			}
			seen[p] = true
		}
		if len(pkgs) == 0 {
			return
		}
		msg := packagesMessage(pkgs, MaxPackagesMessage)
		if len(msg) > MaxPackagesMessage {
			t.Fatalf("message of %d bytes, max %d: %q", len(msg), MaxPackagesMessage, msg)
		}
		if !utf8.ValidString(msg) {
			t.Fatalf("message %q is not valid UTF-8", msg)
		}
		if strings.IndexFunc(msg, unicode.IsControl) >= 0 {
			t.Fatalf("message %q holds a control character", msg)
		}
	})
}
