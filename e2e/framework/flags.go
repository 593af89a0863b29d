package framework

import (
	"io"

	"github.com/nodereboot/nodereboot/pkg/cli"
	"github.com/spf13/pflag"
)

// BinaryFlagSet is a binary's command line as its main builds it: its
// options' flags (add) and klog's (cli.AddKlogFlags, as cli.Daemon), so that tests parse a manifest's args
// exactly as the binary would.
func BinaryFlagSet(name string, add func(*pflag.FlagSet)) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	add(fs)
	cli.AddKlogFlags(fs)
	return fs
}
