package decide

// The controller's annotations read back: invalid values are reset to
// the safe side (never to a reboot).

import (
	"fmt"
	"strings"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// garbage checks the controller's annotations and returns a Reset action
// that writes safe values when any is invalid. Invalid values never lead to
// a reboot: at worst a node is drained again, then authorized by a finished
// drain.
func garbage(in Input) (Action, bool) {
	n, now := in.Node, in.Now
	ann := n.Annotations
	p := &Patch{Annotations: map[string]*string{}}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	raw, present := StateOf(n)
	state, err := contract.ParseState(raw)
	if present && (err != nil || state == contract.StateIdle) {
		// An unknown (or empty) state. If the node is cordoned, it may
		// have been anywhere in the pipeline: mark it Failed so that a
		// person looks at it (it keeps its cordon and its slot). If it
		// is schedulable, nothing is in progress: forget the state.
		if _, ours := ann[contract.AnnotationCordonedByUs]; ours || n.Spec.Unschedulable {
			bad("unknown state %q on a cordoned node: marked %s", raw, contract.StateFailed)
			p.Annotations[contract.AnnotationState] = ptr(string(contract.StateFailed))
			p.Annotations[contract.AnnotationStateSince] = ptr(contract.FormatTime(now))
			p.Annotations[contract.AnnotationStateReason] = ptr(contract.ReasonInvalidAnnotation)
		} else {
			bad("unknown state %q on a schedulable node: removed", raw)
			p.Annotations[contract.AnnotationState] = nil
			p.Annotations[contract.AnnotationStateSince] = nil
			p.Annotations[contract.AnnotationStateReason] = nil
		}
		if _, ok := ann[contract.AnnotationRebootAuthorized]; ok {
			p.Annotations[contract.AnnotationRebootAuthorized] = nil
		}
		return reset(p, problems), true
	}

	if state.Active() {
		if s, ok := ann[contract.AnnotationStateSince]; !ok {
			bad("%s missing: set to now", contract.AnnotationStateSince)
			p.Annotations[contract.AnnotationStateSince] = ptr(contract.FormatTime(now))
		} else if _, err := contract.ParseTime(s); err != nil {
			bad("%s: %v: set to now", contract.AnnotationStateSince, err)
			p.Annotations[contract.AnnotationStateSince] = ptr(contract.FormatTime(now))
		}
	}
	for _, k := range []string{contract.AnnotationLastReboot, contract.AnnotationNotBefore} {
		if s, ok := ann[k]; ok {
			if _, err := contract.ParseTime(s); err != nil {
				bad("%s: %v: removed", k, err)
				p.Annotations[k] = nil
			}
		}
	}
	boundLabels(n, in.Config, bad, p)
	boundTimes(n, in, state, bad, p)
	if s, ok := ann[contract.AnnotationScaleDownDisabledByUs]; ok && s != "true" {
		if _, err := contract.ParseTime(s); err != nil {
			bad("%s: %v: the protection ends now", contract.AnnotationScaleDownDisabledByUs, err)
			p.Annotations[contract.AnnotationScaleDownDisabledByUs] = ptr(contract.FormatTime(now))
		}
	}

	authz, hasAuthz := ann[contract.AnnotationRebootAuthorized]
	boot := n.Status.NodeInfo.BootID
	restartDrain := func(why string) {
		bad("%s in state %s: drain again", why, state)
		p.Annotations[contract.AnnotationState] = ptr(string(contract.StateDraining))
		p.Annotations[contract.AnnotationStateSince] = ptr(contract.FormatTime(now))
		if hasAuthz {
			p.Annotations[contract.AnnotationRebootAuthorized] = nil
		}
	}
	switch state {
	case contract.StateDraining, contract.StateFailed:
		// Only the Authorize step writes an authorization, and Fail
		// removes it.
		if hasAuthz {
			bad("%s=%q in state %s: removed", contract.AnnotationRebootAuthorized, authz, state)
			p.Annotations[contract.AnnotationRebootAuthorized] = nil
		}
	case contract.StateAuthorized:
		if authz == "" {
			restartDrain(fmt.Sprintf("%s missing", contract.AnnotationRebootAuthorized))
		} else if rec, ok := authorizedBoot(n); ok && rec != authz {
			// Somebody changed the authorization: a wrong value must
			// not pass for a completed reboot (authorized() takes any
			// other boot ID for one). Restore what Authorize wrote.
			bad("%s=%q is not the boot ID %s authorized (%s): restored", contract.AnnotationRebootAuthorized, authz, rec, contract.AnnotationStateReason)
			p.Annotations[contract.AnnotationRebootAuthorized] = ptr(rec)
		}
	case contract.StateRebooted:
		rec, recorded := authorizedBoot(n)
		switch {
		case authz == "" && recorded && rec != boot:
			// The reboot of that authorization is done: a missing
			// authorization must not drain and reboot the node a
			// second time for the same request.
			bad("%s missing in state %s: restored from %s", contract.AnnotationRebootAuthorized, state, contract.AnnotationStateReason)
			p.Annotations[contract.AnnotationRebootAuthorized] = ptr(rec)
		case authz == "":
			restartDrain(fmt.Sprintf("%s missing", contract.AnnotationRebootAuthorized))
		case authz == boot:
			restartDrain(fmt.Sprintf("%s is the current boot ID %q", contract.AnnotationRebootAuthorized, boot))
		}
	}
	if len(problems) == 0 {
		return Action{}, false
	}
	return reset(p, problems), true
}

func reset(p *Patch, problems []string) Action {
	return Action{Kind: Reset, Reason: contract.ReasonInvalidAnnotation,
		Message: "invalid annotations: " + strings.Join(problems, "; "), Patch: p}
}
