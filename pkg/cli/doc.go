// Package cli is what the nodereboot binaries share on their command line:
// errors that name their flag (FlagErrors).
package cli
