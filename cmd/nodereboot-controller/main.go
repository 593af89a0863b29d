// Command nodereboot-controller is the cluster-wide half of nodereboot: it
// picks the nodes that need a reboot, at most --max-concurrent at a time,
// cordons and drains them, authorizes their reboot, waits for the new boot
// and uncordons them. See docs/controller.md.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	// The IANA time zones of --time-zone, also in images without
	// /usr/share/zoneinfo.
	_ "time/tzdata"

	"k8s.io/klog/v2"

	"github.com/nodereboot/nodereboot/pkg/cli"
	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/app"
	"github.com/nodereboot/nodereboot/pkg/controller/options"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses the flags and runs the controller. Exit codes (pkg/cli): 0
// after a clean stop, 1 on a failure or a lost leadership, 2 on invalid
// flags.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o := options.New(getenv)
	var cfg *options.Config
	return cli.Daemon{
		Component: contract.ControllerComponent,
		Short:     "Reboots the nodes that need it, a few at a time, drained and with the leader's authorization.",
		Long: "nodereboot-controller picks the nodes that need a reboot, at most --max-concurrent at a time, " +
			"cordons and drains them, authorizes their reboot, waits for the new boot and uncordons them (docs/controller.md).",
		AddFlags: o.AddFlags,
		Complete: func() (err error) {
			cfg, err = o.Complete()
			return err
		},
		Run: func(ctx context.Context) error {
			logger := klog.FromContext(ctx).WithName("controller")
			ctx = klog.NewContext(ctx, logger)
			if err := app.Run(ctx, cfg); err != nil {
				return err
			}
			logger.Info("Stopped")
			return nil
		},
	}.Execute(ctx, args, stdout, stderr)
}
