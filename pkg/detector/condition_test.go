package detector

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
	"github.com/nodereboot/nodereboot/pkg/sentinel"
)

var (
	t0        = time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	heartbeat = 5 * time.Minute
	present   = sentinel.Observation{Status: v1.ConditionTrue, Reason: sentinel.ReasonSentinelPresent, Message: "Sentinel /var/run/reboot-required is present"}
	absent    = sentinel.Observation{Status: v1.ConditionFalse, Reason: sentinel.ReasonSentinelAbsent, Message: "Sentinel /var/run/reboot-required is absent"}
	folder    = sentinel.Observation{Status: v1.ConditionUnknown, Reason: sentinel.ReasonSentinelUnreadable, Message: "Sentinel /var/run/reboot-required is a folder, not a file"}
	cmdFailed = sentinel.Observation{Status: v1.ConditionUnknown, Reason: sentinel.ReasonCommandFailed, Message: `Sentinel command "check" exited 127`}
)

func cond(o sentinel.Observation, transition, heartbeat time.Time) *v1.NodeCondition {
	return &v1.NodeCondition{
		Type: contract.DefaultConditionType, Status: o.Status, Reason: o.Reason, Message: o.Message,
		LastTransitionTime: metav1.NewTime(transition), LastHeartbeatTime: metav1.NewTime(heartbeat),
	}
}

func TestNextCondition(t *testing.T) {
	later := t0.Add(time.Minute)
	for _, tc := range []struct {
		name           string
		prev           *v1.NodeCondition
		obs            sentinel.Observation
		now            time.Time
		first          bool
		wantWrite      bool
		wantTransition time.Time
		wantHeartbeat  time.Time
	}{
		{name: "no condition yet", prev: nil, obs: present, now: t0, wantWrite: true, wantTransition: t0, wantHeartbeat: t0},
		{name: "unchanged within the heartbeat", prev: cond(present, t0, t0), obs: present, now: later,
			wantWrite: false, wantTransition: t0, wantHeartbeat: t0},
		{name: "unchanged, heartbeat due", prev: cond(present, t0, t0), obs: present, now: t0.Add(heartbeat),
			wantWrite: true, wantTransition: t0, wantHeartbeat: t0.Add(heartbeat)},
		{name: "status changes", prev: cond(present, t0, t0), obs: absent, now: later,
			wantWrite: true, wantTransition: later, wantHeartbeat: later},
		{name: "to unknown", prev: cond(absent, t0, t0), obs: folder, now: later,
			wantWrite: true, wantTransition: later, wantHeartbeat: later},
		{name: "reason changes, status does not: transition time kept", prev: cond(folder, t0, t0), obs: cmdFailed, now: later,
			wantWrite: true, wantTransition: t0, wantHeartbeat: later},
		{name: "message changes (packages): transition time kept", prev: cond(present, t0, t0),
			obs: sentinel.Observation{Status: v1.ConditionTrue, Reason: sentinel.ReasonSentinelPresent, Message: present.Message + "; required by libc6"},
			now: later, wantWrite: true, wantTransition: t0, wantHeartbeat: later},
		{name: "unchanged, recent heartbeat written by this process", prev: cond(present, t0.Add(-48*time.Hour), t0), obs: present, now: later,
			wantWrite: false, wantTransition: t0.Add(-48 * time.Hour), wantHeartbeat: t0},
		{name: "restarted detector: old transition, recent heartbeat of an earlier process: written once", prev: cond(present, t0.Add(-48*time.Hour), t0), obs: present, now: later,
			first: true, wantWrite: true, wantTransition: t0.Add(-48 * time.Hour), wantHeartbeat: later},
		{name: "first write after a boot, status changed", prev: cond(present, t0.Add(-48*time.Hour), t0), obs: absent, now: later,
			first: true, wantWrite: true, wantTransition: later, wantHeartbeat: later},
		{name: "restarted detector: old transition, stale heartbeat", prev: cond(present, t0.Add(-48*time.Hour), t0.Add(-time.Hour)), obs: present, now: t0,
			wantWrite: true, wantTransition: t0.Add(-48 * time.Hour), wantHeartbeat: t0},
		{name: "heartbeat from the far future (another clock)", prev: cond(present, t0, t0.Add(time.Hour)), obs: present, now: t0,
			wantWrite: true, wantTransition: t0, wantHeartbeat: t0},
		{name: "missing transition time", prev: cond(present, time.Time{}, t0.Add(-time.Hour)), obs: present, now: t0,
			wantWrite: true, wantTransition: t0, wantHeartbeat: t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, write := nextCondition(tc.prev, contract.DefaultConditionType, tc.obs, tc.now, heartbeat, tc.first)
			if write != tc.wantWrite {
				t.Errorf("write = %v, want %v", write, tc.wantWrite)
			}
			if !got.LastTransitionTime.Time.Equal(tc.wantTransition) {
				t.Errorf("lastTransitionTime = %v, want %v", got.LastTransitionTime, tc.wantTransition)
			}
			if !got.LastHeartbeatTime.Time.Equal(tc.wantHeartbeat) {
				t.Errorf("lastHeartbeatTime = %v, want %v", got.LastHeartbeatTime, tc.wantHeartbeat)
			}
			if write && (got.Status != tc.obs.Status || got.Reason != tc.obs.Reason || got.Message != tc.obs.Message) {
				t.Errorf("condition %+v does not carry the observation %v", got, tc.obs)
			}
			if string(got.Type) != contract.DefaultConditionType {
				t.Errorf("type %q", got.Type)
			}
		})
	}
}

func TestTransitionEvent(t *testing.T) {
	for _, tc := range []struct {
		name       string
		prev       *v1.NodeCondition
		obs        sentinel.Observation
		wantOK     bool
		wantType   string
		wantReason string
	}{
		{"first True", nil, present, true, v1.EventTypeNormal, contract.ReasonRebootRequired},
		{"first False", nil, absent, true, v1.EventTypeNormal, contract.ReasonRebootNotRequired},
		{"True to False", cond(present, t0, t0), absent, true, v1.EventTypeNormal, contract.ReasonRebootNotRequired},
		{"False to True", cond(absent, t0, t0), present, true, v1.EventTypeNormal, contract.ReasonRebootRequired},
		{"to unreadable", cond(absent, t0, t0), folder, true, v1.EventTypeWarning, contract.ReasonSentinelUnreadable},
		{"to command failed", cond(absent, t0, t0), cmdFailed, true, v1.EventTypeWarning, contract.ReasonRebootUnknown},
		{"unknown reason changes", cond(folder, t0, t0), cmdFailed, true, v1.EventTypeWarning, contract.ReasonRebootUnknown},
		{"heartbeat only", cond(present, t0, t0), present, false, "", ""},
		{"message only", cond(present, t0, t0), sentinel.Observation{Status: v1.ConditionTrue, Reason: sentinel.ReasonSentinelPresent, Message: "other"}, false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := nextCondition(tc.prev, contract.DefaultConditionType, tc.obs, t0.Add(time.Minute), heartbeat, false)
			typ, reason, ok := transitionEvent(tc.prev, c)
			if ok != tc.wantOK || typ != tc.wantType || reason != tc.wantReason {
				t.Errorf("transitionEvent = %q %q %v, want %q %q %v", typ, reason, ok, tc.wantType, tc.wantReason, tc.wantOK)
			}
		})
	}
}

func TestUntilHeartbeat(t *testing.T) {
	c := cond(present, t0, t0)
	if got := untilHeartbeat(c, t0.Add(time.Minute), heartbeat); got != 4*time.Minute {
		t.Errorf("untilHeartbeat = %v, want 4m", got)
	}
	if got := untilHeartbeat(c, t0.Add(time.Hour), heartbeat); got != time.Millisecond {
		t.Errorf("overdue untilHeartbeat = %v, want 1ms", got)
	}
}

func TestReporterPrevious(t *testing.T) {
	ours := cond(absent, t0, t0.Add(time.Minute))
	stale := cond(present, t0, t0)
	node := func(uid, rv string, c *v1.NodeCondition) *v1.Node {
		n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", UID: types.UID(uid), ResourceVersion: rv}}
		if c != nil {
			n.Status.Conditions = []v1.NodeCondition{*c}
		}
		return n
	}
	for _, tc := range []struct {
		name        string
		lastWritten *v1.NodeCondition
		node        *v1.Node
		want        *v1.NodeCondition
	}{
		{"restart: the cache", nil, node("u1", "10", stale), stale},
		{"cache behind our write", ours, node("u1", "9", stale), ours},
		{"cache at our write", ours, node("u1", "10", ours), ours},
		{"cache after our write (someone else changed it)", ours, node("u1", "11", stale), stale},
		{"condition removed later by someone", ours, node("u1", "11", nil), nil},
		{"node recreated", ours, node("u2", "3", nil), nil},
		{"opaque versions: ours", ours, node("u1", "abc", stale), ours},
	} {
		r := &reporter{condType: contract.DefaultConditionType, lastWritten: tc.lastWritten, lastUID: "u1", lastRV: "10"}
		if got := r.previous(tc.node); got != tc.want && (got == nil || tc.want == nil || *got != *tc.want) {
			t.Errorf("%s: previous = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// A message with control characters is written cleaned and capped, and the
// same observation seen again is not a change (the cleaning is idempotent).
func TestNextConditionCleansTheMessage(t *testing.T) {
	dirty := sentinel.Observation{Status: v1.ConditionUnknown, Reason: sentinel.ReasonCommandFailed,
		Message: "Sentinel command \"check\" exited 3: \x1b]0;owned\a" + strings.Repeat("x", 2000)}
	got, write := nextCondition(nil, contract.DefaultConditionType, dirty, t0, heartbeat, false)
	if !write || strings.ContainsAny(got.Message, "\x1b\a") || len(got.Message) > sanitize.MaxMessage ||
		!strings.HasPrefix(got.Message, `Sentinel command "check" exited 3: \x1b]0;owned\x07xxx`) {
		t.Fatalf("condition message %q (%d bytes), write %v", got.Message, len(got.Message), write)
	}
	if _, write := nextCondition(&got, contract.DefaultConditionType, dirty, t0.Add(time.Minute), heartbeat, false); write {
		t.Fatal("the same dirty observation counted as a change of the cleaned message")
	}
}
