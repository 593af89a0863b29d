//go:build tools

// Package lint pins staticcheck, built into bin/ by `make lint`.
package lint

import _ "honnef.co/go/tools/cmd/staticcheck"
