// Package nodesim simulates the host side of a node for the detector: a
// folder standing for /var/run (where the sentinel lives), a file standing for
// /proc/sys/kernel/random/boot_id, and a reboot. The Node object itself is a
// kwok node of the local control plane (e2e/framework).
//
// A reboot is requested by running RebootCommand (the detector's
// --reboot-command). The simulator then stops the node's agent (the
// detector), marks the node NotReady, writes a new boot ID to the file and
// to status.nodeInfo.bootID as a kubelet does at start, clears the /var/run
// folder (a tmpfs on real hosts), marks the node Ready again after
// RebootDelay, and starts the agent again. Every reboot is recorded in the
// reboot log, which tests and the invariant observer read.
package nodesim
