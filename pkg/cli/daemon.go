package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/nodereboot/nodereboot/pkg/version"
)

// Exit codes of every nodereboot binary.
const (
	// ExitOK: a clean stop (SIGTERM, SIGINT), or --help, --version.
	ExitOK = 0
	// ExitFailure: the binary failed (it could not start, a server
	// failed, the controller lost its leadership).
	ExitFailure = 1
	// ExitUsage: bad flags or arguments; the message names the flag.
	ExitUsage = 2
)

// Daemon is the command line of a long-running nodereboot binary
// (nodereboot-controller, nodereboot-detector): its options' flags, klog's
// flags and --version, no arguments.
type Daemon struct {
	// Component is the binary's name (contract.ControllerComponent…).
	Component string
	// Short and Long describe it in --help.
	Short, Long string
	// AddFlags binds the options' flags.
	AddFlags func(*pflag.FlagSet)
	// Complete checks the parsed options and keeps their configuration;
	// its error (every bad flag, each named) exits 2.
	Complete func() error
	// Run runs the binary until ctx ends; its error exits 1.
	Run func(ctx context.Context) error
}

// usageError is an error of the command line: exit 2.
type usageError struct{ error }

// AddKlogFlags binds klog's flags (-v, --vmodule, --logtostderr…) to fs, as
// every nodereboot binary has them.
func AddKlogFlags(fs *pflag.FlagSet) {
	gfs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(gfs)
	fs.AddGoFlagSet(gfs)
}

// Command is the daemon's cobra command; Execute runs it.
func (d Daemon) Command() *cobra.Command {
	cmd := &cobra.Command{
		Use:           d.Component,
		Short:         d.Short,
		Long:          d.Long,
		Version:       version.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unexpected arguments %q", args)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.Complete(); err != nil {
				return usageError{fmt.Errorf("invalid flags:\n%w", err)}
			}
			klog.FromContext(cmd.Context()).Info("Starting", "version", version.Version)
			return d.Run(cmd.Context())
		},
	}
	cmd.SetVersionTemplate(VersionLine(d.Component) + "\n")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see --help)", err)}
	})
	fs := cmd.Flags()
	d.AddFlags(fs)
	AddKlogFlags(fs)
	fs.Bool("version", false, "Print the version and exit.")
	return cmd
}

// Execute parses args and runs the daemon; it returns the exit code. Help
// and --version go to stdout, errors to stderr as "component: error".
func (d Daemon) Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	defer klog.Flush()
	cmd := d.Command()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "%s: %v\n", d.Component, err)
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailure
}

// VersionLine is what --version prints: "component version", the version
// set at build time (pkg/version, Makefile LDFLAGS).
func VersionLine(component string) string {
	return component + " " + version.Version
}
