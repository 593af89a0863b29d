// Package serving runs the small HTTP server that both nodereboot binaries
// expose: /metrics (Prometheus, from a registry the caller owns), /healthz and
// /readyz (lists of named checks). A server is bound to one address; a binary
// that wants metrics and probes on different ports runs two servers.
//
// The server never uses http.ListenAndServe: every timeout of http.Server is
// set, and Run shuts it down gracefully when its context is cancelled.
package serving
