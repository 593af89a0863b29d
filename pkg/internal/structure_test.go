package internal_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The limits of the developers' standard (README, "Style"): a non-test Go
// file under pkg/ holds at most maxFileLines lines, a function at most
// maxFuncLines (from its func keyword to its closing brace).
const (
	maxFileLines = 400
	maxFuncLines = 60
)

// allowed are the files and functions over the limit that are still to be
// split, keyed "path" or "path:Func" (path relative to pkg/, methods as
// Type.Method). Each entry is a debt: remove it when it is split. An entry
// that no longer exceeds its limit fails the test, so that the list only
// shrinks.
var allowed = map[string]bool{}

// TestFileAndFunctionLength fails when a non-test .go file under pkg/ is
// longer than maxFileLines or holds a function longer than maxFuncLines.
func TestFileAndFunctionLength(t *testing.T) {
	fset := token.NewFileSet()
	seen := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel("..", path)
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if n := fset.File(f.Pos()).LineCount(); n > maxFileLines {
			seen[rel] = true
		}
		if n := fset.File(f.Pos()).LineCount(); n > maxFileLines && !allowed[rel] {
			t.Errorf("%s: %d lines, more than %d: split it by concern", rel, n, maxFileLines)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			lines := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
			key := rel + ":" + funcName(fn)
			if lines <= maxFuncLines {
				continue
			}
			seen[key] = true
			if !allowed[key] {
				t.Errorf("%s: %d lines, more than %d: split it", key, lines, maxFuncLines)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	for key := range allowed {
		if !seen[key] {
			stale = append(stale, key)
		}
	}
	sort.Strings(stale)
	for _, key := range stale {
		t.Errorf("%s is within the limits now (or gone): remove it from the allowlist", key)
	}
}

// funcName is a function's name, a method's as Type.Method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	typ := fn.Recv.List[0].Type
	if s, ok := typ.(*ast.StarExpr); ok {
		typ = s.X
	}
	switch x := typ.(type) {
	case *ast.IndexExpr:
		typ = x.X
	case *ast.IndexListExpr:
		typ = x.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

// The decisions are pure: pkg/controller/decide (and what it imports) links
// no client-go, so that they are functions of what they are given, and the
// reboot window they read lives in pkg/gates/window, not in pkg/gates with
// its informers.
func TestDecideLinksNoClientGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/nodereboot/nodereboot/pkg/controller/decide").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "k8s.io/client-go/") || p == "github.com/nodereboot/nodereboot/pkg/gates" {
			t.Errorf("pkg/controller/decide links %s", p)
		}
	}
}

// The controller caches trimmed nodes (pkg/controller trimNode): an update
// of a cached node would erase the fields it dropped. The controller's
// packages therefore write Nodes by patches only: no call of Update or
// UpdateStatus on a Nodes() client in their non-test files.
func TestControllerWritesNodesByPatchOnly(t *testing.T) {
	fset := token.NewFileSet()
	for _, dir := range []string{"../controller", "../drain", "../gates"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok && nodeUpdate(call) {
					t.Errorf("%s: a Node written by an update; patch the fields instead", fset.Position(call.Pos()))
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// nodeUpdate reports whether call is X.Nodes().Update(…) or
// X.Nodes().UpdateStatus(…).
func nodeUpdate(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || (sel.Sel.Name != "Update" && sel.Sel.Name != "UpdateStatus") {
		return false
	}
	inner, ok := sel.X.(*ast.CallExpr)
	if !ok {
		return false
	}
	s, ok := inner.Fun.(*ast.SelectorExpr)
	return ok && s.Sel.Name == "Nodes"
}
