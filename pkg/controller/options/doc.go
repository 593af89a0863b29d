// Package options holds the command-line options of nodereboot-controller:
// their flags and defaults, their validation, and their conversion to the
// controller's configuration.
package options
