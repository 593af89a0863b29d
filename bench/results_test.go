package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// handEdited are results files known to have been edited by hand after
// their run: they must fail the strict decoding below (that is how the
// edit shows) until a run of `make bench` replaces them. The last one,
// 2026-11-25.json, was replaced by 2026-12-01.json.
var handEdited = map[string]bool{}

// otherWriters are the name parts of results files that another program
// writes into bench/results, in its own format; that program's tests
// check them. e2e/realnode names its files <date>-realnode[-<commit>].json.
var otherWriters = map[string]string{
	"-realnode": "e2e/realnode's TestRealNode (JSON lines of its own type)",
}

// writtenByOther names the program that writes the file, "" for bench.
func writtenByOther(name string) string {
	for part, writer := range otherWriters {
		if strings.Contains(name, part) {
			return writer
		}
	}
	return ""
}

// decodeResults decodes a results file strictly: a field the Results type
// cannot write, or anything after the object, is an error.
func decodeResults(b []byte) (*Results, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Results
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errTrailing
	}
	return &r, nil
}

var errTrailing = errors.New("data after the results object")

// TestResultsFilesAreTheProgramsOwn: every file under bench/results decodes
// strictly into Results, so a field added by hand shows; and re-encoded by
// the program's own save, it is byte for byte what is on disk, so a figure
// edited, added or removed by hand in the program's layout shows too (a
// results file is written only by the run that measured it).
func TestResultsFilesAreTheProgramsOwn(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("results", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no results files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if w := writtenByOther(filepath.Base(f)); w != "" {
				t.Skipf("written by %s", w)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r, err := decodeResults(b)
			if handEdited[filepath.Base(f)] {
				if err == nil {
					t.Fatalf("%s is listed as edited by hand but decodes strictly: take it off the list", f)
				}
				t.Logf("known hand-edited file, to be replaced by a run: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("%s is not a results file the program writes: %v", f, err)
			}
			out := filepath.Join(t.TempDir(), "re.json")
			if err := save(out, r); err != nil {
				t.Fatal(err)
			}
			again, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Errorf("%s is not byte for byte what the program writes for its own content: edited by hand?", f)
			}
		})
	}
}

func TestStrictDecodingRefusesAForeignField(t *testing.T) {
	if _, err := decodeResults([]byte(`{"figures":[],"notes":["edited"]}`)); err == nil {
		t.Error("a field Results cannot write was accepted")
	}
	if _, err := decodeResults([]byte(`{"figures":[]} {}`)); err == nil {
		t.Error("data after the object was accepted")
	}
}
