// Command bench is `make bench`: it measures nodereboot on the local control
// plane of e2e/framework and prints a table and writes JSON (see
// docs/benchmarks.md for the latest figures and how to read them).
//
// Detectors run as real processes (bin/nodereboot-detector) up to
// --process-detector-limit nodes; beyond that the same detector code runs in
// this process, one client and one informer per node, as separate pods would.
// The controller always runs as the real binary.
package main
