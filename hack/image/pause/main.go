// Command pause is the sandbox ("pause") container of the real-node tests
// (e2e/realnode): nothing can be pulled on the test machine, so the image the
// kubelet asks containerd for is built here (make image). Like Kubernetes'
// own pause (build/pause/linux/pause.c), it sleeps until SIGINT or SIGTERM
// and reaps the zombies of a shared PID namespace; it is written in Go so
// that it builds without a C toolchain, static.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
