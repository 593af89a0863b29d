// Package controller is the nodereboot controller's control loop, in the
// shape of kubernetes/sample-controller: a shared informer on Nodes, a
// rate-limited workqueue of node names, and workers that call syncHandler.
// Each sync asks the pure functions of package decide what to do next and
// executes the answer with one merge patch (guarded by the node's
// resourceVersion), events and metrics; every wait ends with a requeue at a
// known time or a watch event, never with polling. Taking new nodes happens
// in one place only, the admission pass (a queue and a goroutine of its
// own, so that it never runs twice at once), which counts nodes out from
// the cache plus the takes the cache does not show yet. What the cache does
// not show yet of the controller's own writes and takes is kept in one
// place, ownWrites (ownwrites.go).
package controller
