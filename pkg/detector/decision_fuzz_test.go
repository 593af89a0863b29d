package detector

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/sentinel"
)

// FuzzRebootDecision: whatever the annotations hold, the detector reboots
// only when the authorization is exactly the current boot ID, resumes only
// an annotated reboot of the current boot, never both reboots and warns,
// and only warns about the value it was given.
func FuzzRebootDecision(f *testing.F) {
	f.Add(bootA, true, "", "", "", bootA)
	f.Add(bootA, true, bootA, "Authorized", "", bootA)
	f.Add(bootB, true, bootB, "Authorized", "", bootA)
	f.Add(bootB, true, "", "Rebooted", "", bootA)
	f.Add("yes", true, "", "", "", bootA)
	f.Add(" "+bootA, true, "", "", "", bootA)
	f.Add("", true, bootA, "", "", bootA)
	f.Add(bootC, true, "", "", bootC, bootA)
	f.Add(bootA, false, bootB, "", "", bootA)
	f.Fuzz(func(t *testing.T, authz string, hasAuthz bool, rebooting, state, previous, current string) {
		if current == "" {
			return // the detector refuses to start without a boot ID
		}
		ann := map[string]string{}
		if hasAuthz {
			ann[contract.AnnotationRebootAuthorized] = authz
			ann[contract.AnnotationStateReason] = contract.AuthorizedReason(authz)
		}
		if rebooting != "" {
			ann[contract.AnnotationRebooting] = rebooting
		}
		if state != "" {
			ann[contract.AnnotationState] = state
		}
		prev := sets.New[string]()
		if previous != "" {
			prev.Insert(previous)
		}
		n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: ann}, Spec: v1.NodeSpec{Unschedulable: true}}
		d := rebootDecision(n, current, prev)
		authorized := hasAuthz && authz == current && state == string(contract.StateAuthorized)
		if d.Reboot && !authorized {
			t.Fatalf("reboot with %s=%q (hasAuthz %v), current boot %q: %+v", contract.AnnotationRebootAuthorized, authz, hasAuthz, current, d)
		}
		if authorized && !d.Reboot {
			t.Fatalf("no reboot although the current boot is authorized: %+v", d)
		}
		if d.Resume && (!d.Reboot || rebooting != current) {
			t.Fatalf("resume without an annotated reboot of the current boot: %+v", d)
		}
		if d.InvalidValue != "" && (d.Reboot || !strings.HasPrefix(d.InvalidValue, authz) || d.Invalid == "") {
			t.Fatalf("invalid value handling: %+v (authz %q)", d, authz)
		}
		if d.Rebooted && (rebooting == "" || rebooting == current || d.OldBootID != rebooting) {
			t.Fatalf("Rebooted without an older rebooting annotation: %+v", d)
		}
		if d.ClearRebooting && (rebooting != current || (hasAuthz && authz == current)) {
			t.Fatalf("clear of the rebooting annotation of a pending authorization: %+v", d)
		}
		if d.InvalidValue != "" && !strings.Contains(d.Invalid, "no reboot") {
			t.Fatalf("warning %q does not say there is no reboot", d.Invalid)
		}
	})
}

// FuzzNextCondition: the condition written carries the observation, a
// fresh heartbeat, and a transition time that moves only with the status;
// not writing leaves the previous condition as it was; the first write of a
// process always happens.
func FuzzNextCondition(f *testing.F) {
	f.Add(uint8(0), "SentinelPresent", "msg", int64(0), int64(0), true, uint8(0), "SentinelPresent", "msg", int64(60), false)
	f.Add(uint8(1), "SentinelAbsent", "m", int64(-3600), int64(-10), true, uint8(1), "SentinelAbsent", "m", int64(0), true)
	f.Add(uint8(2), "SentinelUnreadable", "", int64(0), int64(7200), true, uint8(0), "SentinelPresent", "x", int64(1), false)
	f.Add(uint8(0), "", "", int64(0), int64(0), false, uint8(0), "SentinelPresent", "", int64(0), false)
	statuses := []v1.ConditionStatus{v1.ConditionTrue, v1.ConditionFalse, v1.ConditionUnknown}
	f.Fuzz(func(t *testing.T, prevStatus uint8, prevReason, prevMsg string, prevTransition, prevHeartbeat int64, hasPrev bool,
		obsStatus uint8, obsReason, obsMsg string, nowOffset int64, first bool) {
		now := t0.Add(time.Duration(nowOffset%1e6) * time.Second)
		var prev *v1.NodeCondition
		if hasPrev {
			prev = &v1.NodeCondition{Type: contract.DefaultConditionType, Status: statuses[int(prevStatus)%3], Reason: prevReason, Message: prevMsg,
				LastTransitionTime: metav1.NewTime(t0.Add(time.Duration(prevTransition%1e6) * time.Second)),
				LastHeartbeatTime:  metav1.NewTime(t0.Add(time.Duration(prevHeartbeat%1e6) * time.Second))}
		}
		obs := sentinel.Observation{Status: statuses[int(obsStatus)%3], Reason: obsReason, Message: obsMsg}
		var before v1.NodeCondition
		if prev != nil {
			before = *prev
		}
		cond, write := nextCondition(prev, contract.DefaultConditionType, obs, now, heartbeat, first)
		if prev != nil && before != *prev {
			t.Fatal("nextCondition changed the previous condition")
		}
		if (prev == nil || first) && !write {
			t.Fatal("no write without a condition or on the first write of a process")
		}
		if !write {
			if cond != *prev {
				t.Fatalf("no write, but a different condition: %+v vs %+v", cond, *prev)
			}
			return
		}
		if cond.Status != obs.Status || cond.Reason != obs.Reason || cond.Message != obs.Message || string(cond.Type) != contract.DefaultConditionType {
			t.Fatalf("written %+v does not carry %+v", cond, obs)
		}
		if !cond.LastHeartbeatTime.Time.Equal(now) {
			t.Fatalf("heartbeat %v, want now %v", cond.LastHeartbeatTime, now)
		}
		want := now
		if prev != nil && prev.Status == obs.Status && !prev.LastTransitionTime.IsZero() {
			want = prev.LastTransitionTime.Time
		}
		if !cond.LastTransitionTime.Time.Equal(want) {
			t.Fatalf("transition %v, want %v (previous %+v, observation %+v)", cond.LastTransitionTime, want, prev, obs)
		}
	})
}
