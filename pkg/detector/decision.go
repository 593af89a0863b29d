package detector

import (
	"fmt"
	"regexp"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// Decision is what the detector must do about its node's reboot annotations.
// Several fields may be set at once; they are carried out in the order of
// the fields.
type Decision struct {
	// Rebooted: the node booted since the detector issued a reboot
	// (nodereboot.io/rebooting holds an older boot ID, OldBootID). Record a
	// Rebooted event and remove the annotation.
	Rebooted  bool
	OldBootID string
	// ClearRebooting: nodereboot.io/rebooting holds the current boot ID but
	// the authorization is gone: no reboot is pending any more. Remove the
	// annotation, unless this process issued a reboot that is under way.
	ClearRebooting bool
	// InvalidValue is set when the authorization holds a value that is not
	// the current boot nor a known previous one; Invalid says why. It never
	// leads to a reboot.
	InvalidValue string
	Invalid      string
	// Reboot: the authorization equals the current boot ID.
	Reboot bool
	// Resume: nodereboot.io/rebooting already holds the current boot ID: an
	// earlier run wrote it and was stopped before the node went down, so the
	// reboot is issued again without writing the annotation.
	Resume bool
}

// bootIDPattern is the shape of a Linux boot ID (a random UUID).
var bootIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// rebootDecision decides from the node's annotations and the current boot ID
// read from the host. previous holds the boot IDs this process knows to be
// earlier boots of this node (it removed them from nodereboot.io/rebooting).
//
// An authorization is "stale" (a previous boot, silently ignored) when it
// equals nodereboot.io/rebooting, is in previous, or the controller has
// already moved the node to state Rebooted (it saw the node come back from
// that boot). Any other value that is not the current boot ID is invalid.
func rebootDecision(node *v1.Node, currentBootID string, previous sets.Set[string]) Decision {
	var d Decision
	ann := node.Annotations
	rebooting := ann[contract.AnnotationRebooting]
	authz, hasAuthz := ann[contract.AnnotationRebootAuthorized]

	switch {
	case rebooting == "":
	case rebooting != currentBootID:
		d.Rebooted, d.OldBootID = true, rebooting
	case authz != currentBootID:
		d.ClearRebooting = true
	}

	switch {
	case !hasAuthz || authz == "":
	case authz == currentBootID:
		d.Reboot = true
		d.Resume = rebooting == currentBootID
	case authz == rebooting, previous.Has(authz),
		ann[contract.AnnotationState] == string(contract.StateRebooted):
		// The authorization of a boot that is over; the controller clears it.
	default:
		d.InvalidValue = authz
		if bootIDPattern.MatchString(authz) {
			d.Invalid = fmt.Sprintf("%s=%q is not the current boot ID %s of this node, nor a boot it rebooted from: no reboot",
				contract.AnnotationRebootAuthorized, authz, currentBootID)
		} else {
			d.Invalid = fmt.Sprintf("%s=%q is not a boot ID (want the node's current boot ID %s): no reboot",
				contract.AnnotationRebootAuthorized, authz, currentBootID)
		}
	}
	return d
}
