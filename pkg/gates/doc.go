// Package gates holds the policy gates the controller checks before it
// takes a node and again before it authorizes a reboot: blocking pods
// (PodBlocker), Prometheus alerts (AlertChecker) and the cluster-wide pause
// (PauseWatch); reboot windows are the pure package window, which the
// decisions read without linking client-go. Each gate answers with a Block
// (why, and when to look again) or nil; the controller's pure decisions
// (package decide) combine them.
package gates
