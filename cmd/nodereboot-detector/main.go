// Command nodereboot-detector runs on every node: it reports whether the node
// needs a reboot as a node condition and reboots the node when the
// nodereboot controller authorizes its current boot. See docs/detector.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/detector"
	"github.com/nodereboot/nodereboot/pkg/detector/options"
	"github.com/nodereboot/nodereboot/pkg/kubeclient"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is main with its arguments and error output: it returns 0 after a
// clean shutdown (SIGTERM, SIGINT), 2 for bad flags and 1 for other errors.
func run(args []string, stderr io.Writer) int {
	o := options.New()
	fs := pflag.NewFlagSet(contract.DetectorComponent, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o.AddFlags(fs)
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v (see --help)\n", contract.DetectorComponent, err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", contract.DetectorComponent, fs.Args())
		return 2
	}
	cfg, err := o.Complete()
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid flags:\n%v\n", contract.DetectorComponent, err)
		return 2
	}
	defer klog.Flush()

	restCfg, err := cfg.RESTConfig()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", contract.DetectorComponent, err)
		return 1
	}
	client, err := kubeclient.New(restCfg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", contract.DetectorComponent, err)
		return 1
	}
	dc := cfg.Detector
	dc.Client = client
	d, err := detector.New(dc)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", contract.DetectorComponent, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())
	if err := d.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", contract.DetectorComponent, err)
		return 1
	}
	return 0
}
