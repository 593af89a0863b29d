// Package options holds the command-line options of nodereboot-detector:
// their flags and defaults (AddFlags), their validation (Validate) and their
// translation into a detector.Config (Config).
package options
