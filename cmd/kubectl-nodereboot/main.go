// Command kubectl-nodereboot is the kubectl plugin of nodereboot: with the
// binary on PATH, `kubectl nodereboot status | request NODE | pause | resume
// | history NODE`. It uses the kubeconfig the way kubectl does (KUBECONFIG,
// --kubeconfig, --context, …). See docs/kubectl-plugin.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/nodereboot/nodereboot/pkg/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}

// run runs the plugin (pkg/plugin). Exit codes (pkg/cli): 0 done, 1
// failed, 2 bad usage.
func run(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	return plugin.Run(ctx, args, streams, nil)
}
