// Command nodereboot-controller is the cluster-wide half of nodereboot: it
// picks the nodes that need a reboot, at most --max-concurrent at a time,
// cordons and drains them, authorizes their reboot, waits for the new boot
// and uncordons them. See docs/controller.md.
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
	// The IANA time zones of --time-zone, also in images without
	// /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/app"
	"github.com/nodereboot/nodereboot/pkg/controller/options"
	"github.com/nodereboot/nodereboot/pkg/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	klog.Flush()
	os.Exit(code)
}

// run parses the flags and runs the controller. Exit codes: 0 after a clean
// stop, 1 on a failure or a lost leadership, 2 on invalid flags.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	o := options.New(getenv)
	fs := pflag.NewFlagSet(contract.ControllerComponent, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o.AddFlags(fs)
	showVersion := fs.Bool("version", false, "Print the version and exit.")
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", contract.ControllerComponent, err)
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stderr, contract.ControllerComponent, version.Version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", contract.ControllerComponent, fs.Args())
		return 2
	}
	cfg, err := o.Complete()
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid flags:\n%v\n", contract.ControllerComponent, err)
		return 2
	}
	logger := klog.Background().WithName("controller")
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting", "version", version.Version)
	if err := app.Run(ctx, cfg); err != nil {
		logger.Error(err, "Exiting")
		return 1
	}
	logger.Info("Stopped")
	return 0
}
