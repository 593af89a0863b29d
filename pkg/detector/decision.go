package detector

import (
	"fmt"
	"regexp"
	"strings"

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
		if why := notAuthorizedBy(node, currentBootID); why != "" {
			// The value is right but the rest of the authorization is
			// not: anyone allowed to patch the Node could have written
			// it. Defence in depth: never a reboot on one annotation.
			d.InvalidValue = authz + "|" + why
			d.Invalid = fmt.Sprintf("%s names the current boot ID %s, but %s: no reboot",
				contract.AnnotationRebootAuthorized, currentBootID, why)
			break
		}
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

// notAuthorizedBy says what is missing from a controller's authorization of
// boot on the node ("" when nothing is): the controller writes
// reboot-authorized, state Authorized and a state-reason naming the same
// boot in one patch, on a node it has cordoned. A reboot-authorized alone —
// what a forged annotation looks like — is not an authorization.
func notAuthorizedBy(node *v1.Node, boot string) string {
	ann := node.Annotations
	var missing []string
	if s := ann[contract.AnnotationState]; s != string(contract.StateAuthorized) {
		missing = append(missing, fmt.Sprintf("%s is %q, not %s", contract.AnnotationState, s, contract.StateAuthorized))
	}
	if rec, ok := contract.AuthorizedBoot(ann[contract.AnnotationStateReason]); !ok || rec != boot {
		missing = append(missing, fmt.Sprintf("%s does not record the authorization of that boot", contract.AnnotationStateReason))
	}
	if !node.Spec.Unschedulable {
		missing = append(missing, "the node is not cordoned")
	}
	return strings.Join(missing, ", ")
}
