// Package decide holds the controller's decisions as pure functions: Node
// decides the next step for one node from the node object, the status of its
// drain, the configuration and the current time; Admit decides which waiting
// nodes may start their reboot. Neither does I/O nor reads a clock, so every
// rule of the pipeline is covered by table-driven tests without a cluster.
// The controller (package controller) executes the actions they return.
package decide
