// Package version holds the version of the nodereboot binaries, set at build
// time with -ldflags "-X github.com/nodereboot/nodereboot/pkg/version.Version=...".
package version

// Version is the release or git description the binary was built from.
var Version = "dev"
