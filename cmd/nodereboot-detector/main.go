// Command nodereboot-detector runs on every node: it reports whether the node
// needs a reboot as a node condition and reboots the node when the
// nodereboot controller authorizes its current boot. See docs/detector.md.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nodereboot/nodereboot/pkg/cli"
	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/detector"
	"github.com/nodereboot/nodereboot/pkg/detector/options"
	"github.com/nodereboot/nodereboot/pkg/kubeclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses the flags and runs the detector. Exit codes (pkg/cli): 0 after
// a clean stop (SIGTERM, SIGINT), 1 when it cannot start, 2 on invalid
// flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := options.New()
	var cfg *options.Config
	return cli.Daemon{
		Component: contract.DetectorComponent,
		Short:     "Reports whether this node needs a reboot, and reboots it when the controller authorizes its boot.",
		Long: "nodereboot-detector runs on every node: it reports whether the node needs a reboot as a node condition " +
			"and reboots the node when the nodereboot controller authorizes its current boot (docs/detector.md).",
		AddFlags: o.AddFlags,
		Complete: func() (err error) {
			cfg, err = o.Complete()
			return err
		},
		Run: func(ctx context.Context) error {
			restCfg, err := cfg.RESTConfig()
			if err != nil {
				return err
			}
			client, err := kubeclient.New(restCfg, contract.DetectorComponent)
			if err != nil {
				return err
			}
			dc := cfg.Detector
			dc.Client = client
			d, err := detector.New(dc)
			if err != nil {
				return err
			}
			return d.Run(ctx)
		},
	}.Execute(ctx, args, stdout, stderr)
}
