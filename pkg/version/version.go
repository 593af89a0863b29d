// Package version holds the version of the nodereboot binaries, set at build
// time with -ldflags "-X github.com/nodereboot/nodereboot/pkg/version.Version=...".
package version

// Version is the release or git description the binary was built from.
var Version = "dev"

// UserAgent is the API user agent of a nodereboot binary:
// "<component>/<version>", e.g. nodereboot-controller/v1.2.0.
func UserAgent(component string) string {
	return component + "/" + Version
}
