package sentinel

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
)

// Condition reasons, as they appear in the node condition's reason field.
const (
	// ReasonSentinelPresent: the sentinel file exists (True).
	ReasonSentinelPresent = "SentinelPresent"
	// ReasonSentinelAbsent: the sentinel file does not exist (False).
	ReasonSentinelAbsent = "SentinelAbsent"
	// ReasonSentinelUnreadable: the sentinel path is a folder, a dangling
	// symlink, not a regular file, or cannot be examined (Unknown).
	ReasonSentinelUnreadable = "SentinelUnreadable"
	// ReasonCommandRequired: the sentinel command exited 0 (True).
	ReasonCommandRequired = "SentinelCommandRequired"
	// ReasonCommandNotRequired: the sentinel command exited 1 (False).
	ReasonCommandNotRequired = "SentinelCommandNotRequired"
	// ReasonCommandFailed: the sentinel command could not run, timed out, was
	// killed by a signal or exited with a code other than 0 and 1 (Unknown).
	ReasonCommandFailed = "SentinelCommandFailed"
)

// Observation is what a probe saw: the status of the reboot-required
// condition with its reason and a human-readable message.
type Observation struct {
	// Status is True (reboot required), False or Unknown.
	Status v1.ConditionStatus
	// Reason is one of the Reason constants of this package.
	Reason string
	// Message says what was seen, for people.
	Message string
}

// String formats an observation for logs.
func (o Observation) String() string {
	return fmt.Sprintf("%s/%s: %s", o.Status, o.Reason, o.Message)
}
