package observer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Outcome is what a node must have come to by the end of a rollout.
type Outcome string

// The outcomes.
const (
	// Untouched: never rebooted, never taken (the default for nodes that
	// Expect does not name).
	Untouched Outcome = "Untouched"
	// Rebooted: rebooted at least once and back in service (no state).
	Rebooted Outcome = "Rebooted"
	// Failed: state Failed with a reason; it may stay cordoned.
	Failed Outcome = "Failed"
	// GivenBack: its drain failed with --on-drain-failure=uncordon: not
	// rebooted, no state, a DrainFailed event.
	GivenBack Outcome = "GivenBack"
	// Any: whatever happened (a node deleted mid-rollout); the invariants
	// still apply.
	Any Outcome = "Any"
)

// Expect is what the test knows about the end of its rollout.
type Expect struct {
	// Outcomes per node; nodes not named must be Untouched.
	Outcomes map[string]Outcome
	// AdminCordoned are nodes cordoned by somebody else before the rollout.
	AdminCordoned []string
	// LostEventsAllowed: the fault can lose events legitimately (a process
	// SIGKILLed after a write and before its event reached the API server).
	// Missing events are then reported, not counted as violations.
	LostEventsAllowed bool
	// BudgetDipsAllowed: the fault itself takes pods away without an
	// eviction (a node deleted: its pods are garbage-collected), or the
	// controller runs with --on-drain-failure=reboot; a budget with fewer
	// healthy pods than it wants is then reported, not a violation.
	BudgetDipsAllowed bool
}

// Report is the result of a rollout.
type Report struct {
	Violations []Violation `json:"violations"`
	// LostEvents are the missing events when Expect.LostEventsAllowed.
	LostEvents []string `json:"lostEvents,omitempty"`
	// Notes are observations that are not violations.
	Notes []string `json:"notes,omitempty"`
	// MaxOut is the most nodes out at once.
	MaxOut int `json:"maxOut"`
	// Reboots is the number of reboots.
	Reboots int `json:"reboots"`
	// LeftCordoned are nodes cordoned at the end that are neither
	// admin-cordoned nor Failed with a reason (also violations of I4).
	LeftCordoned []string `json:"leftCordoned,omitempty"`
	// NotReady are nodes not Ready at the end.
	NotReady []string `json:"notReady,omitempty"`
	// FailedWithReason are nodes that ended Failed, with their reason.
	FailedWithReason map[string]string `json:"failedWithReason,omitempty"`
	// BudgetDips are the moments a PodDisruptionBudget had fewer healthy
	// pods than it wants, when the fault allows them.
	BudgetDips []string `json:"budgetDips,omitempty"`
	// Evictions and EvictionsRefused are the controller's eviction requests
	// that the API server accepted and refused (429), from the audit log.
	Evictions        int `json:"evictions"`
	EvictionsRefused int `json:"evictionsRefused"`
}

// Finish waits (until ctx ends) for the events the observed steps call for,
// then runs the checks at the end of a rollout and returns the report. The
// observer keeps running; Stop it afterwards.
func (o *Observer) Finish(ctx context.Context, exp Expect) Report {
	o.readLogs()
	pods := o.listPods(ctx)
	// Events reach the API server after the writes they announce: wait for
	// them (a missing one is reported when ctx ends).
	_ = o.WaitFor(ctx, "the events of every step", func(View) bool { return len(o.missingEvents()) == 0 })
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reconcilePods(pods)
	if o.relists > 0 {
		o.note("the node watch was relisted %d time(s): what happened between the versions around each relist is checked only where they prove it", o.relists)
	}
	o.checkOutReplay()
	o.checkReboots(true)
	o.checkDrained()
	o.checkDeclaredReboots()
	o.checkRebootRequests()
	var rep Report
	for _, m := range o.missingEvents() {
		if exp.LostEventsAllowed {
			rep.LostEvents = append(rep.LostEvents, m.node+": "+m.msg)
		} else {
			o.violate("I5", m.node, "%s", m.msg)
		}
	}
	for _, d := range o.budgetDips {
		if exp.BudgetDipsAllowed {
			rep.BudgetDips = append(rep.BudgetDips, d)
		} else {
			o.violate("I3", "", "PodDisruptionBudget below its minimum: %s", d)
		}
	}
	o.checkEnd(exp, &rep)
	if o.cfg.AuditLog != "" {
		o.checkAudit(&rep)
	}
	rep.Violations = append([]Violation(nil), o.violations...)
	rep.Notes = append([]string(nil), o.notes...)
	rep.MaxOut = o.maxOut
	for _, rs := range o.reboots {
		rep.Reboots += len(rs)
	}
	return rep
}

// listPods is a consistent list of the pods now (nil without a client or
// on an error).
func (o *Observer) listPods(ctx context.Context) map[types.UID]bool {
	if o.cfg.Client == nil {
		return nil
	}
	list, err := o.cfg.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		o.logf("observer: cannot list the pods: %v", err)
		return nil
	}
	uids := make(map[types.UID]bool, len(list.Items))
	for _, p := range list.Items {
		uids[p.UID] = true
	}
	return uids
}

// reconcilePods: a pod the watch still shows but that is gone now was
// deleted while the watch was behind; when is unknown. o.mu is held.
func (o *Observer) reconcilePods(now map[types.UID]bool) {
	if now == nil {
		return
	}
	for uid, pd := range o.pods {
		if pd.goneRV == 0 && !pd.goneUnknown && !now[uid] {
			pd.goneUnknown = true
		}
	}
}

// checkDeclaredReboots is I6: every move to Rebooted names a boot that a
// reboot of the node produced. o.mu is held.
func (o *Observer) checkDeclaredReboots() {
	for node, hist := range o.nodes {
		produced := map[string]bool{}
		for _, r := range o.reboots[node] {
			produced[r.NewBootID] = true
		}
		for i, v := range hist {
			s, _ := v.state()
			if s != stateRebooted || v.deleted {
				continue
			}
			if i > 0 {
				if prev, _ := hist[i-1].state(); prev == stateRebooted {
					continue
				}
			}
			if !produced[v.bootID] {
				o.violate("I6", node, "state %s (rv %d) with boot ID %s, which no reboot of the node produced (authorized: %q)",
					stateRebooted, v.rv, v.bootID, v.ann[annAuthorized])
			}
		}
	}
}

type missing struct{ node, msg string }

// missingEvents compares the steps seen on the nodes with the events
// recorded. o.mu is held.
func (o *Observer) missingEvents() []missing {
	var out []missing
	nodes := make([]string, 0, len(o.nodes))
	for n := range o.nodes {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	v := View{o}
	for _, node := range nodes {
		want := map[[2]string]int{} // component, reason → count
		hist := o.nodes[node]
		for i := 1; i < len(hist); i++ {
			prev, cur := hist[i-1], hist[i]
			if cur.deleted {
				continue
			}
			ps, pHas := prev.state()
			cs, cHas := cur.state()
			switch {
			case cur.forged(annState) || prev.forged(annState):
				// Written by somebody else (an attack), or its reset
				// by the controller: not a step of the pipeline.
			case !pHas && cs == stateDraining: // the take
				want[[2]string{controllerComponent, "Draining"}]++
				if _, ours := cur.ann[annCordonedByUs]; ours && !prev.unschedulable && cur.unschedulable {
					want[[2]string{controllerComponent, "Cordoned"}]++
				}
			case cs == stateAuthorized && ps != stateAuthorized:
				want[[2]string{controllerComponent, "RebootAuthorized"}]++
			case cs == stateRebooted && ps != stateRebooted:
				want[[2]string{controllerComponent, "Rebooted"}]++
			case cs == stateFailed && ps != stateFailed && validStates[ps]:
				want[[2]string{controllerComponent, cur.ann[annStateReason]}]++
			case ps == stateRebooted && !cHas:
				want[[2]string{controllerComponent, "RebootCompleted"}]++
				if prev.unschedulable && !cur.unschedulable {
					want[[2]string{controllerComponent, "Uncordoned"}]++
				}
			case ps == stateDraining && !cHas:
				if _, ok := cur.ann[annNotBefore]; ok {
					want[[2]string{controllerComponent, "DrainFailed"}]++
				}
			}
		}
		for _, r := range o.reboots[node] {
			n, _ := o.rebootingEvents(node, r.OldBootID)
			if n == 0 {
				out = append(out, missing{node, fmt.Sprintf("no Rebooting event from the detector for boot %s", r.OldBootID)})
			}
		}
		keys := make([][2]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i][1] < keys[j][1] })
		for _, k := range keys {
			if got := v.Events(node, k[0], k[1]); got < want[k] {
				out = append(out, missing{node, fmt.Sprintf("%d %s events from %s for %d such steps", got, k[1], k[0], want[k])})
			}
		}
	}
	return out
}

// rebootingEvents counts the detector's Rebooting events for a boot: all,
// and those that are not a repeat ("issued again"). o.mu is held.
func (o *Observer) rebootingEvents(node, boot string) (all, fresh int) {
	for _, e := range o.events {
		if e.node == node && e.component == detectorComponent && e.reason == "Rebooting" && strings.Contains(e.message, boot) {
			all += int(e.count)
			if !strings.Contains(e.message, "issued again") {
				fresh += int(e.count)
			}
		}
	}
	return all, fresh
}

// checkRebootRequests is the last part of I2: one authorization, one reboot
// request per detector process; a second process only resumes ("issued
// again"). o.mu is held.
func (o *Observer) checkRebootRequests() {
	for node, rs := range o.reboots {
		for _, r := range rs {
			if _, fresh := o.rebootingEvents(node, r.OldBootID); fresh > 1 {
				o.violate("I2", node, "%d Rebooting events (not 'issued again') for boot %s: several reboot requests for one authorization", fresh, r.OldBootID)
			}
		}
	}
}

// checkEnd is I4 and I5 on the final state. o.mu is held.
func (o *Observer) checkEnd(exp Expect, rep *Report) {
	admin := map[string]bool{}
	for _, n := range exp.AdminCordoned {
		admin[n] = true
	}
	rep.FailedWithReason = map[string]string{}
	for node, hist := range o.nodes {
		last := hist[len(hist)-1]
		want := exp.Outcomes[node]
		if want == "" {
			want = Untouched
		}
		if last.deleted {
			if want != Any {
				o.violate("I5", node, "deleted, want %s", want)
			}
			continue
		}
		state, hasState := last.state()
		reason := last.ann[annStateReason]
		failed := state == stateFailed && reason != ""
		if failed {
			rep.FailedWithReason[node] = reason
		}
		if !last.ready {
			rep.NotReady = append(rep.NotReady, node)
		}
		// I5: done or failed with a reason.
		if hasState && !failed {
			o.violate("I5", node, "the rollout did not end: state %q (reason %q)", state, reason)
		}
		// I4: cordons.
		if admin[node] && !last.unschedulable {
			o.violate("I4", node, "cordoned by an administrator before the rollout, uncordoned at the end")
		}
		if _, ours := last.ann[annCordonedByUs]; ours && !failed {
			o.violate("I4", node, "still %s at the end without being Failed with a reason", annCordonedByUs)
		}
		if last.unschedulable && !admin[node] && !failed {
			rep.LeftCordoned = append(rep.LeftCordoned, node)
			o.violate("I4", node, "left cordoned without being Failed with a reason")
		}
		// The expected outcome.
		reboots := len(o.reboots[node])
		switch want {
		case Rebooted:
			if reboots == 0 || hasState {
				o.violate("I5", node, "want rebooted and back in service: %d reboots, state %q", reboots, state)
			}
		case Failed:
			if !failed {
				o.violate("I5", node, "want Failed with a reason, state %q reason %q", state, reason)
			}
		case GivenBack:
			if reboots != 0 || hasState || View.Events(View{o}, node, controllerComponent, "DrainFailed") == 0 {
				o.violate("I5", node, "want given back after a failed drain: %d reboots, state %q, %d DrainFailed events",
					reboots, state, View.Events(View{o}, node, controllerComponent, "DrainFailed"))
			}
		case Untouched:
			took := false
			for _, v := range hist {
				if _, ok := v.state(); ok && !v.forged(annState) {
					took = true
				}
			}
			if reboots != 0 || took {
				o.violate("I5", node, "want untouched: %d reboots, taken %v", reboots, took)
			}
		}
	}
	sort.Strings(rep.LeftCordoned)
	sort.Strings(rep.NotReady)
}

// auditEntry is the part of an audit event that I3 reads.
type auditEntry struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// checkAudit is I3: the controller never wrote a pod; it only evicted. o.mu
// is held.
func (o *Observer) checkAudit(rep *Report) {
	f, err := os.Open(o.cfg.AuditLog)
	if err != nil {
		o.violate("I3", "", "cannot read the audit log: %v", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	entries := 0
	for sc.Scan() {
		var e auditEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.User.Username != ControllerUser {
			continue
		}
		entries++
		ref := e.ObjectRef
		if ref.Resource != "pods" {
			continue
		}
		switch {
		case ref.Subresource == "eviction" && e.Verb == "create":
			switch e.ResponseStatus.Code {
			case 201, 200:
				rep.Evictions++
			case 429:
				rep.EvictionsRefused++
			}
		case ref.Subresource == "" && (e.Verb == "get" || e.Verb == "list" || e.Verb == "watch"):
		default:
			o.violate("I3", "", "the controller's service account sent %s pods/%s %s/%s (HTTP %d)",
				e.Verb, ref.Subresource, ref.Namespace, ref.Name, e.ResponseStatus.Code)
		}
	}
	if entries == 0 {
		o.violate("I3", "", "no request of the controller in the audit log %s: the check saw nothing", o.cfg.AuditLog)
	}
}
