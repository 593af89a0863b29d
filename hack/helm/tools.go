//go:build tools

// Package tools pins the Helm CLI that renders and lints the chart in
// deploy/helm/nodereboot (make helm builds it into bin/helm; the tests in
// e2e/deploy build it on demand). It is a module of its own so that Helm's
// dependencies never enter nodereboot's go.mod.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
