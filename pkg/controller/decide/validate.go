package decide

// The controller's annotations read back: invalid values are reset to
// the safe side (never to a reboot).

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// garbage checks the controller's annotations and returns a Reset action
// that writes safe values when any is invalid. Invalid values never lead to
// a reboot: at worst a node is drained again, then authorized by a finished
// drain.
func garbage(in Input) (Action, bool) {
	n := in.Node
	if !carriesOurs(n) {
		return Action{}, false // nothing to check: most nodes, on every admission pass
	}
	p := &Patch{Annotations: map[string]*string{}}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	raw, present := StateOf(n)
	state, err := contract.ParseState(raw)
	if present && (err != nil || state == contract.StateIdle) {
		unknownState(in, raw, bad, p)
		return reset(p, problems), true
	}
	badTimes(in, state, bad, p)
	boundLabels(n, in.Config, bad, p)
	boundTimes(n, in, state, bad, p)
	badScaleDown(in, bad, p)
	badAuthorization(in, state, bad, p)
	if len(problems) == 0 {
		return Action{}, false
	}
	return reset(p, problems), true
}

// unknownState resets an unknown (or empty) state. If the node is
// cordoned, it may have been anywhere in the pipeline: it is marked Failed
// so that a person looks at it (it keeps its cordon and its slot). If it is
// schedulable, nothing is in progress: the state is forgotten.
func unknownState(in Input, raw string, bad func(string, ...any), p *Patch) {
	n, ann := in.Node, in.Node.Annotations
	if _, ours := ann[contract.AnnotationCordonedByUs]; ours || n.Spec.Unschedulable {
		bad("unknown state %q on a cordoned node: marked %s", raw, contract.StateFailed)
		p.Annotations[contract.AnnotationState] = ptr.To(string(contract.StateFailed))
		p.Annotations[contract.AnnotationStateSince] = ptr.To(contract.FormatTime(in.Now))
		p.Annotations[contract.AnnotationStateReason] = ptr.To(contract.ReasonInvalidAnnotation)
	} else {
		bad("unknown state %q on a schedulable node: removed", raw)
		p.Annotations[contract.AnnotationState] = nil
		p.Annotations[contract.AnnotationStateSince] = nil
		p.Annotations[contract.AnnotationStateReason] = nil
	}
	if _, ok := ann[contract.AnnotationRebootAuthorized]; ok {
		p.Annotations[contract.AnnotationRebootAuthorized] = nil
	}
}

// badTimes resets the timestamps that do not parse: a missing or invalid
// state-since of an active state is set to now, an invalid last-reboot or
// not-before removed.
func badTimes(in Input, state contract.State, bad func(string, ...any), p *Patch) {
	ann, now := in.Node.Annotations, in.Now
	if state.Active() {
		if s, ok := ann[contract.AnnotationStateSince]; !ok {
			bad("%s missing: set to now", contract.AnnotationStateSince)
			p.Annotations[contract.AnnotationStateSince] = ptr.To(contract.FormatTime(now))
		} else if _, err := contract.ParseTime(s); err != nil {
			bad("%s: %v: set to now", contract.AnnotationStateSince, err)
			p.Annotations[contract.AnnotationStateSince] = ptr.To(contract.FormatTime(now))
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
}

// badScaleDown ends a scale-down protection whose end does not parse now.
func badScaleDown(in Input, bad func(string, ...any), p *Patch) {
	if s, ok := in.Node.Annotations[contract.AnnotationScaleDownDisabledByUs]; ok && s != "true" {
		if _, err := contract.ParseTime(s); err != nil {
			bad("%s: %v: the protection ends now", contract.AnnotationScaleDownDisabledByUs, err)
			p.Annotations[contract.AnnotationScaleDownDisabledByUs] = ptr.To(contract.FormatTime(in.Now))
		}
	}
}

// badAuthorization checks the authorization against the state: only the
// Authorize step writes one and Fail removes it; a changed one is restored
// from what Authorize recorded; one that cannot be trusted drains again.
func badAuthorization(in Input, state contract.State, bad func(string, ...any), p *Patch) {
	n, now := in.Node, in.Now
	authz, hasAuthz := n.Annotations[contract.AnnotationRebootAuthorized]
	boot := n.Status.NodeInfo.BootID
	restartDrain := func(why string) {
		bad("%s in state %s: drain again", why, state)
		p.Annotations[contract.AnnotationState] = ptr.To(string(contract.StateDraining))
		p.Annotations[contract.AnnotationStateSince] = ptr.To(contract.FormatTime(now))
		if hasAuthz {
			p.Annotations[contract.AnnotationRebootAuthorized] = nil
		}
	}
	switch state {
	case contract.StateDraining, contract.StateFailed:
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
			p.Annotations[contract.AnnotationRebootAuthorized] = ptr.To(rec)
		}
	case contract.StateRebooted:
		rec, recorded := authorizedBoot(n)
		switch {
		case authz == "" && recorded && rec != boot:
			// The reboot of that authorization is done: a missing
			// authorization must not drain and reboot the node a
			// second time for the same request.
			bad("%s missing in state %s: restored from %s", contract.AnnotationRebootAuthorized, state, contract.AnnotationStateReason)
			p.Annotations[contract.AnnotationRebootAuthorized] = ptr.To(rec)
		case authz == "":
			restartDrain(fmt.Sprintf("%s missing", contract.AnnotationRebootAuthorized))
		case authz == boot:
			restartDrain(fmt.Sprintf("%s is the current boot ID %q", contract.AnnotationRebootAuthorized, boot))
		}
	}
}

func reset(p *Patch, problems []string) Action {
	return Action{Kind: Reset, Reason: contract.ReasonInvalidAnnotation,
		Message: "invalid annotations: " + strings.Join(problems, "; "), Patch: p}
}

// carriesOurs reports whether any of the node's annotations is under
// contract.Prefix; garbage checks only those.
func carriesOurs(n *v1.Node) bool {
	for k := range n.Annotations {
		if strings.HasPrefix(k, contract.Prefix) {
			return true
		}
	}
	return false
}
