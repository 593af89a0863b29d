// Package contract is the node contract of nodereboot: the names of the
// condition, labels, annotations and event reasons through which the detector,
// the controller and people talk about a node, and the parsers for the values
// that nodereboot writes. Everything nodereboot knows about a node lives on the
// Node object, so that `kubectl describe node` shows it and a new leader
// resumes from it. docs/node-contract.md is the prose version of this package.
package contract
