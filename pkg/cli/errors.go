package cli

import (
	"errors"
	"fmt"
)

// FlagErrors collects the errors of a command line, each naming its flag
// ("--flag: message"), so that one run reports every bad flag at once.
type FlagErrors struct {
	errs []error
}

// Add records an error about --flag.
func (e *FlagErrors) Add(flag, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
}

// Check records err, when not nil, as an error about --flag.
func (e *FlagErrors) Check(flag string, err error) {
	if err != nil {
		e.Add(flag, "%v", err)
	}
}

// Append records errors that already name their source (a flag or an
// environment variable).
func (e *FlagErrors) Append(errs ...error) {
	e.errs = append(e.errs, errs...)
}

// Err is nil without errors, else all of them, one a line.
func (e *FlagErrors) Err() error { return errors.Join(e.errs...) }

// Errs is the errors recorded so far.
func (e *FlagErrors) Errs() []error { return e.errs }
