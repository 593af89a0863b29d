// Command local-cluster starts the local control plane of e2e/framework with
// simulated nodes and keeps it running until interrupted (`make cluster`).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nodereboot/nodereboot/e2e/framework"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("local-cluster", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "number of simulated nodes")
	dir := fs.String("dir", "_output/cluster", "folder for data, kubeconfig and logs (emptied first)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *nodes < 0 {
		fmt.Fprintln(os.Stderr, "--nodes must not be negative")
		return 2
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.RemoveAll(abs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := framework.Start(startCtx, framework.Options{
		Nodes: *nodes,
		Dir:   abs,
		Logf:  func(f string, a ...any) { fmt.Printf(f+"\n", a...) },
	})
	if c != nil {
		defer c.Stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "local cluster:", err)
		return 1
	}
	fmt.Printf("\nThe local cluster is up with %d simulated nodes. In another terminal:\n\n", *nodes)
	fmt.Printf("  export KUBECONFIG=%s\n  %s get nodes\n\n", c.AdminKubeconfig, filepath.Join(c.BinDir, "kubectl"))
	fmt.Printf("Component logs: %s\nPress Ctrl-C to stop.\n", c.LogDir)
	<-ctx.Done()
	fmt.Println("\nstopping...")
	return 0
}
