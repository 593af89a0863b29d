package framework

import (
	"flag"
	"io"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// BinaryFlagSet is a binary's command line as its main builds it: its
// options' flags (add) and klog's, so that tests parse a manifest's args
// exactly as the binary would.
func BinaryFlagSet(name string, add func(*pflag.FlagSet)) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	add(fs)
	gfs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(gfs)
	fs.AddGoFlagSet(gfs)
	return fs
}
