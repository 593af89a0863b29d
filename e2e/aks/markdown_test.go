package aks

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// block is a fenced code block of docs/aks.md marked for the test.
type block struct {
	Name, Lang, Text string
	Line             int // of the opening fence
}

// markerRE is the marker a block is preceded by, on its own line.
var markerRE = regexp.MustCompile(`^<!-- test: ([a-z0-9-]+) -->$`)

// parseBlocks returns the marked blocks of a Markdown file by name. A marker
// must be followed by a fenced block (after blank lines at most); a name may
// be used once.
func parseBlocks(path string) (map[string]block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	blocks := map[string]block{}
	var pending string // a marker waiting for its block
	var cur *block
	var text strings.Builder
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		l := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(l) == "```":
			cur.Text = text.String()
			blocks[cur.Name] = *cur
			cur = nil
		case cur != nil:
			text.WriteString(l + "\n")
		case markerRE.MatchString(l):
			if pending != "" {
				return nil, fmt.Errorf("%s:%d: marker %q is not followed by a code block", path, line, pending)
			}
			pending = markerRE.FindStringSubmatch(l)[1]
			if _, dup := blocks[pending]; dup {
				return nil, fmt.Errorf("%s:%d: marker %q used twice", path, line, pending)
			}
		case pending != "" && strings.HasPrefix(l, "```"):
			cur = &block{Name: pending, Lang: strings.TrimPrefix(l, "```"), Line: line}
			text.Reset()
			pending = ""
		case pending != "" && strings.TrimSpace(l) != "":
			return nil, fmt.Errorf("%s:%d: marker %q is not followed by a code block", path, line, pending)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil || pending != "" {
		return nil, fmt.Errorf("%s: unterminated marked block", path)
	}
	return blocks, nil
}

func TestParseBlocks(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := dir + "/x.md"
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := parseBlocks(write("text\n<!-- test: a -->\n\n```sh\necho 1\necho 2\n```\n```sh\nnot marked\n```\n<!-- test: b -->\n```yaml\nk: v\n```\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"].Text != "echo 1\necho 2\n" || got["a"].Lang != "sh" || got["b"].Text != "k: v\n" || got["b"].Lang != "yaml" {
		t.Fatalf("parsed %+v", got)
	}
	for _, bad := range []string{
		"<!-- test: a -->\ntext\n```sh\nx\n```\n",
		"<!-- test: a -->\n```sh\nx\n```\n<!-- test: a -->\n```sh\ny\n```\n",
		"<!-- test: a -->\n```sh\nx\n",
		"<!-- test: a -->\n",
	} {
		if _, err := parseBlocks(write(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}
