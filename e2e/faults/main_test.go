package faults

import (
	"fmt"
	"os"
	"testing"

	"github.com/nodereboot/nodereboot/e2e/framework"
)

// binDir holds the nodereboot binaries built from this checkout by TestMain
// (or linked from $NODEREBOOT_FAULTS_BINARIES) and links to the control
// plane's binaries (bin/), so that a stale `make build` never runs in the
// fault tests.
var binDir string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	bins, err := framework.BuildBinaries(os.Getenv("NODEREBOOT_FAULTS_BINARIES"), "nodereboot-controller", "nodereboot-detector")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer bins.Remove()
	binDir = bins.Dir
	return m.Run()
}
