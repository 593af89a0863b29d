// Package gates holds the policy gates the controller checks before it
// takes a node and again before it authorizes a reboot: reboot windows
// (Window), blocking pods (PodBlocker), Prometheus alerts (AlertChecker)
// and the cluster-wide pause (PauseWatch). Each gate answers with a Block
// (why, and when to look again) or nil; the controller's pure decisions
// (package decide) combine them.
package gates
