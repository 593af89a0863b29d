package cli

import (
	"errors"
	"strings"
	"testing"
)

func TestFlagErrorsNameTheirFlags(t *testing.T) {
	var errs FlagErrors
	if errs.Err() != nil {
		t.Fatal("no error recorded, want nil")
	}
	errs.Add("max-concurrent", "must be at least %d, got %d", 1, 0)
	errs.Check("node-selector", nil)
	errs.Check("node-selector", errors.New("bad"))
	errs.Append(errors.New("$ENV: bad"))
	want := "--max-concurrent: must be at least 1, got 0\n--node-selector: bad\n$ENV: bad"
	if got := errs.Err().Error(); got != want {
		t.Fatalf("errors %q, want %q", got, want)
	}
	if len(errs.Errs()) != 3 || !strings.HasPrefix(errs.Errs()[0].Error(), "--") {
		t.Fatalf("Errs %v", errs.Errs())
	}
}
