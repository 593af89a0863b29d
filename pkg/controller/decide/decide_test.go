package decide

import (
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/gates/window"
)

var (
	now  = time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	ts   = contract.FormatTime
	ago  = func(d time.Duration) time.Time { return now.Add(-d) }
	cfg0 = Config{
		Conditions:          []string{contract.DefaultConditionType},
		MaxConcurrent:       1,
		DrainTimeout:        10 * time.Minute,
		OnDrainFailure:      DrainFailureUncordon,
		DrainFailureBackoff: 30 * time.Minute,
		RebootTimeout:       30 * time.Minute,
		MinRebootInterval:   time.Hour,
	}
)

// nodeOpt changes a test node.
type nodeOpt func(*v1.Node)

func node(opts ...nodeOpt) *v1.Node {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{}, Annotations: map[string]string{}},
		Status: v1.NodeStatus{
			NodeInfo:   v1.NodeSystemInfo{BootID: "boot-1"},
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(ago(24 * time.Hour))}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func ann(k, v string) nodeOpt   { return func(n *v1.Node) { n.Annotations[k] = v } }
func label(k, v string) nodeOpt { return func(n *v1.Node) { n.Labels[k] = v } }
func cordoned(n *v1.Node)       { n.Spec.Unschedulable = true }
func boot(id string) nodeOpt    { return func(n *v1.Node) { n.Status.NodeInfo.BootID = id } }
func cond(t string, s v1.ConditionStatus, since time.Time) nodeOpt {
	return func(n *v1.Node) {
		for i := range n.Status.Conditions {
			if string(n.Status.Conditions[i].Type) == t {
				n.Status.Conditions[i].Status = s
				n.Status.Conditions[i].LastTransitionTime = metav1.NewTime(since)
				return
			}
		}
		n.Status.Conditions = append(n.Status.Conditions, v1.NodeCondition{
			Type: v1.NodeConditionType(t), Status: s, LastTransitionTime: metav1.NewTime(since)})
	}
}

// message sets the message of condition t.
func message(t, m string) nodeOpt {
	return func(n *v1.Node) {
		for i := range n.Status.Conditions {
			if string(n.Status.Conditions[i].Type) == t {
				n.Status.Conditions[i].Message = m
			}
		}
	}
}

// heartbeat sets the lastHeartbeatTime of condition t.
func heartbeat(t string, at time.Time) nodeOpt {
	return func(n *v1.Node) {
		for i := range n.Status.Conditions {
			if string(n.Status.Conditions[i].Type) == t {
				n.Status.Conditions[i].LastHeartbeatTime = metav1.NewTime(at)
			}
		}
	}
}
func required(since time.Time) nodeOpt {
	return cond(contract.DefaultConditionType, v1.ConditionTrue, since)
}
func notReady(since time.Time) nodeOpt { return cond(string(v1.NodeReady), v1.ConditionFalse, since) }
func readySince(t time.Time) nodeOpt   { return cond(string(v1.NodeReady), v1.ConditionTrue, t) }

// state puts the node in a state since a time, cordoned by us.
func state(s contract.State, since time.Time) nodeOpt {
	return func(n *v1.Node) {
		n.Annotations[contract.AnnotationState] = string(s)
		n.Annotations[contract.AnnotationStateSince] = ts(since)
		n.Annotations[contract.AnnotationCordonedByUs] = "true"
		n.Spec.Unschedulable = true
	}
}
func noAnn(k string) nodeOpt { return func(n *v1.Node) { delete(n.Annotations, k) } }
func uncordoned(n *v1.Node)  { n.Spec.Unschedulable = false }

func set(v string) *string { return &v }

func TestNode(t *testing.T) {
	type want struct {
		kind    Kind
		reason  string
		until   time.Time
		reqTime time.Time
		elapsed time.Duration
		patch   *Patch // compared when not nil
		msg     string // substring of the message
	}
	withCfg := func(f func(*Config)) *Config { c := cfg0; f(&c); return &c }
	sel, _ := labels.Parse("pool=workers")

	for _, tc := range []struct {
		name  string
		node  *v1.Node
		cfg   *Config
		drain *DrainStatus
		want  want
	}{
		// --- idle nodes
		{name: "nil node", node: nil, want: want{kind: Nothing}},
		{name: "idle, nothing requested", node: node(), want: want{kind: Nothing}},
		{name: "condition False", node: node(cond(contract.DefaultConditionType, v1.ConditionFalse, ago(time.Hour))), want: want{kind: Nothing}},
		{name: "condition Unknown", node: node(cond(contract.DefaultConditionType, v1.ConditionUnknown, ago(time.Hour))), want: want{kind: Nothing}},
		{name: "condition True queues with its transition time", node: node(required(ago(time.Hour))),
			want: want{kind: Queue, reqTime: ago(time.Hour)}},
		{name: "another configured condition", node: node(cond("KernelDeadlock", v1.ConditionTrue, ago(time.Minute))),
			cfg:  withCfg(func(c *Config) { c.Conditions = []string{"RebootRequired", "KernelDeadlock"} }),
			want: want{kind: Queue, reqTime: ago(time.Minute)}},
		{name: "unconfigured condition is ignored", node: node(cond("KernelDeadlock", v1.ConditionTrue, ago(time.Minute))),
			want: want{kind: Nothing}},
		{name: "two conditions: the oldest counts", node: node(cond("A", v1.ConditionTrue, ago(time.Minute)), cond("B", v1.ConditionTrue, ago(time.Hour))),
			cfg:  withCfg(func(c *Config) { c.Conditions = []string{"A", "B"} }),
			want: want{kind: Queue, reqTime: ago(time.Hour)}},
		{name: "condition younger than min age waits until exactly old enough", node: node(required(ago(time.Minute))),
			cfg:  withCfg(func(c *Config) { c.ConditionMinAge = 5 * time.Minute }),
			want: want{kind: Wait, until: now.Add(4 * time.Minute)}},
		{name: "condition exactly min age old queues", node: node(required(ago(5 * time.Minute))),
			cfg:  withCfg(func(c *Config) { c.ConditionMinAge = 5 * time.Minute }),
			want: want{kind: Queue, reqTime: ago(5 * time.Minute)}},
		{name: "annotation request ignores min age and uses the time it names", node: node(required(ago(time.Minute)),
			ann(contract.AnnotationRebootRequested, "kubectl-nodereboot "+ts(ago(2*time.Minute)))),
			cfg:  withCfg(func(c *Config) { c.ConditionMinAge = 5 * time.Minute }),
			want: want{kind: Queue, reqTime: ago(2 * time.Minute)}},
		{name: "annotation request without a time goes first", node: node(ann(contract.AnnotationRebootRequested, "")),
			want: want{kind: Queue, reqTime: time.Time{}}},
		{name: "annotation request from the future counts from now", node: node(ann(contract.AnnotationRebootRequested, ts(now.Add(time.Hour)))),
			want: want{kind: Queue, reqTime: now}},
		{name: "annotation and older condition: the older time", node: node(required(ago(time.Hour)),
			ann(contract.AnnotationRebootRequested, "me "+ts(ago(time.Minute)))),
			want: want{kind: Queue, reqTime: ago(time.Hour)}},
		{name: "disabled label", node: node(required(ago(time.Hour)), label(contract.LabelDisabled, "true")), want: want{kind: Nothing}},
		{name: "disabled label other value is not disabled", node: node(required(ago(time.Hour)), label(contract.LabelDisabled, "false")),
			want: want{kind: Queue, reqTime: ago(time.Hour)}},
		{name: "outside the selector", node: node(required(ago(time.Hour)), label("pool", "infra")),
			cfg: withCfg(func(c *Config) { c.Selector = sel }), want: want{kind: Nothing}},
		{name: "inside the selector", node: node(required(ago(time.Hour)), label("pool", "workers")),
			cfg: withCfg(func(c *Config) { c.Selector = sel }), want: want{kind: Queue, reqTime: ago(time.Hour)}},
		{name: "not-before in the future waits until then", node: node(required(ago(time.Hour)), ann(contract.AnnotationNotBefore, ts(now.Add(10*time.Minute)))),
			want: want{kind: Wait, until: now.Add(10 * time.Minute)}},
		{name: "not-before in the past queues", node: node(required(ago(time.Hour)), ann(contract.AnnotationNotBefore, ts(ago(time.Second)))),
			want: want{kind: Queue, reqTime: ago(time.Hour)}},
		{name: "condition written again after a reboot: RebootRequiredAgain until min interval",
			node: node(required(ago(2*time.Hour)), heartbeat(contract.DefaultConditionType, ago(9*time.Minute)), ann(contract.AnnotationLastReboot, ts(ago(10*time.Minute)))),
			want: want{kind: Wait, reason: contract.ReasonRebootTooSoon, until: now.Add(50 * time.Minute)}},
		{name: "condition True since after the reboot (transition, no heartbeat): RebootRequiredAgain",
			node: node(required(ago(9*time.Minute)), ann(contract.AnnotationLastReboot, ts(ago(10*time.Minute)))),
			want: want{kind: Wait, reason: contract.ReasonRebootTooSoon, until: now.Add(50 * time.Minute)}},
		{name: "stale condition (last written before the reboot): ignored, no warning",
			node: node(required(ago(2*time.Hour)), heartbeat(contract.DefaultConditionType, ago(11*time.Minute)), ann(contract.AnnotationLastReboot, ts(ago(10*time.Minute)))),
			want: want{kind: Nothing, msg: "written before the last reboot"}},
		{name: "stale condition without a heartbeat: ignored",
			node: node(required(ago(2*time.Hour)), ann(contract.AnnotationLastReboot, ts(ago(10*time.Minute)))),
			want: want{kind: Nothing}},
		{name: "stale condition, min interval 0: not taken again (the demo bug)",
			node: node(required(ago(time.Minute)), heartbeat(contract.DefaultConditionType, ago(time.Minute)), ann(contract.AnnotationLastReboot, ts(ago(time.Second)))),
			cfg:  withCfg(func(c *Config) { c.MinRebootInterval = 0 }),
			want: want{kind: Nothing}},
		{name: "condition written in the same second as last-reboot counts as stale",
			node: node(required(ago(time.Hour)), heartbeat(contract.DefaultConditionType, ago(10*time.Minute).Add(500*time.Millisecond)), ann(contract.AnnotationLastReboot, ts(ago(10*time.Minute)))),
			cfg:  withCfg(func(c *Config) { c.MinRebootInterval = 0 }),
			want: want{kind: Nothing}},
		{name: "condition written a second after last-reboot counts, min interval 0: queued",
			node: node(required(ago(time.Hour)), heartbeat(contract.DefaultConditionType, ago(10*time.Minute).Add(time.Second)), ann(contract.AnnotationLastReboot, ts(ago(10*time.Minute)))),
			cfg:  withCfg(func(c *Config) { c.MinRebootInterval = 0 }),
			want: want{kind: Queue, reqTime: ago(time.Hour)}},
		{name: "condition naming the current boot counts whatever its timestamps",
			node: node(required(ago(time.Hour)), heartbeat(contract.DefaultConditionType, ago(time.Hour)),
				message(contract.DefaultConditionType, contract.ConditionMessage("present", "boot-1")), ann(contract.AnnotationLastReboot, ts(ago(10*time.Minute)))),
			want: want{kind: Wait, reason: contract.ReasonRebootTooSoon, until: now.Add(50 * time.Minute)}},
		{name: "condition naming an earlier boot is stale whatever its timestamps",
			node: node(required(ago(time.Hour)), heartbeat(contract.DefaultConditionType, ago(time.Minute)),
				message(contract.DefaultConditionType, contract.ConditionMessage("present", "boot-0")), ann(contract.AnnotationLastReboot, ts(ago(10*time.Minute)))),
			cfg:  withCfg(func(c *Config) { c.MinRebootInterval = 0 }),
			want: want{kind: Nothing}},
		{name: "condition naming an earlier boot, no reboot recorded: stale all the same",
			node: node(required(ago(time.Hour)), message(contract.DefaultConditionType, contract.ConditionMessage("present", "boot-0"))),
			want: want{kind: Nothing}},
		{name: "stale condition but a manual request: RebootRequiredAgain (the request counts)",
			node: node(required(ago(2*time.Hour)), ann(contract.AnnotationRebootRequested, "x"), ann(contract.AnnotationLastReboot, ts(ago(10*time.Minute)))),
			want: want{kind: Wait, reason: contract.ReasonRebootTooSoon, until: now.Add(50 * time.Minute)}},
		{name: "stale condition and a younger-than-min-age fresh one: waits for the fresh one",
			node: node(required(ago(2*time.Hour)), cond("B", v1.ConditionTrue, ago(time.Minute)), ann(contract.AnnotationLastReboot, ts(ago(10*time.Minute)))),
			cfg: withCfg(func(c *Config) {
				c.Conditions = []string{contract.DefaultConditionType, "B"}
				c.ConditionMinAge = 5 * time.Minute
			}),
			want: want{kind: Wait, until: now.Add(4 * time.Minute)}},
		{name: "manual request within min interval waits too", node: node(ann(contract.AnnotationRebootRequested, "x"), ann(contract.AnnotationLastReboot, ts(ago(10*time.Minute)))),
			want: want{kind: Wait, reason: contract.ReasonRebootTooSoon, until: now.Add(50 * time.Minute)}},
		{name: "last reboot older than min interval queues", node: node(required(ago(2*time.Hour)), heartbeat(contract.DefaultConditionType, ago(time.Minute)), ann(contract.AnnotationLastReboot, ts(ago(time.Hour)))),
			want: want{kind: Queue, reqTime: ago(2 * time.Hour)}},
		{name: "last reboot without request does nothing", node: node(ann(contract.AnnotationLastReboot, ts(ago(time.Minute)))), want: want{kind: Nothing}},
		{name: "admin-cordoned idle node still queues", node: node(required(ago(time.Hour)), cordoned), want: want{kind: Queue, reqTime: ago(time.Hour)}},
		{name: "NotReady node still queues (admission gates it)", node: node(required(ago(time.Hour)), notReady(ago(time.Minute))),
			want: want{kind: Queue, reqTime: ago(time.Hour)}},

		// --- operator cleared the state
		{name: "state removed on a node we cordoned: release and uncordon",
			node: node(state(contract.StateFailed, ago(time.Hour)), noAnn(contract.AnnotationState), ann(contract.AnnotationStateReason, "RebootTimeout")),
			want: want{kind: Release, patch: &Patch{Unschedulable: new(false), Annotations: map[string]*string{
				contract.AnnotationStateSince: nil, contract.AnnotationStateReason: nil, contract.AnnotationCordonedByUs: nil}}}},
		{name: "state removed on an admin-cordoned node: release, stays cordoned",
			node: node(cordoned, ann(contract.AnnotationStateSince, ts(ago(time.Hour))), ann(contract.AnnotationRebootAuthorized, "boot-1")),
			want: want{kind: Release, patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationStateSince: nil, contract.AnnotationRebootAuthorized: nil}}}},
		{name: "cordoned-by-us left on a schedulable node: removed, nothing uncordoned",
			node: node(ann(contract.AnnotationCordonedByUs, "true")),
			want: want{kind: Release, patch: &Patch{Annotations: map[string]*string{contract.AnnotationCordonedByUs: nil}}}},
		{name: "release comes before the disabled label", node: node(label(contract.LabelDisabled, "true"), ann(contract.AnnotationStateReason, "x")),
			want: want{kind: Release}},

		// --- draining
		{name: "draining without a drain pass: drain", node: node(required(ago(time.Hour)), state(contract.StateDraining, ago(time.Minute))),
			want: want{kind: Drain}},
		{name: "draining ignores the disabled label (in-progress nodes finish)", node: node(label(contract.LabelDisabled, "true"), state(contract.StateDraining, ago(time.Minute))),
			want: want{kind: Drain}},
		{name: "drained: authorize the current boot ID",
			node: node(state(contract.StateDraining, ago(3*time.Minute))), drain: &DrainStatus{},
			want: want{kind: Authorize, reason: contract.ReasonRebootAuthorized, elapsed: 3 * time.Minute, patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationRebootAuthorized: set("boot-1"), contract.AnnotationState: set("Authorized"), contract.AnnotationStateSince: set(ts(now)),
				contract.AnnotationStateReason: set(contract.AuthorizedReason("boot-1"))}}}},
		{name: "drained but no boot ID: wait, never authorize empty",
			node: node(state(contract.StateDraining, ago(3*time.Minute)), boot("")), drain: &DrainStatus{},
			want: want{kind: Wait, reason: contract.ReasonRebootBlocked, msg: "no boot ID"}},
		{name: "drained after the deadline still authorizes",
			node: node(state(contract.StateDraining, ago(time.Hour))), drain: &DrainStatus{},
			want: want{kind: Authorize}},
		{name: "pods left, retry scheduled before the deadline: wait for the retry",
			node: node(state(contract.StateDraining, ago(time.Minute))), drain: &DrainStatus{Pending: 2, RetryAt: now.Add(5 * time.Second)},
			want: want{kind: Wait, until: now.Add(5 * time.Second)}},
		{name: "pods left, no retry: wait for the deadline (pod deletions requeue)",
			node: node(state(contract.StateDraining, ago(time.Minute))), drain: &DrainStatus{Pending: 1},
			want: want{kind: Wait, until: now.Add(9 * time.Minute)}},
		{name: "pods left, retry after the deadline: wait for the deadline",
			node: node(state(contract.StateDraining, ago(9*time.Minute+58*time.Second))), drain: &DrainStatus{Pending: 1, RetryAt: now.Add(5 * time.Second)},
			want: want{kind: Wait, until: now.Add(2 * time.Second)}},
		{name: "drain timeout, policy uncordon: give back, not-before",
			node: node(required(ago(time.Hour)), state(contract.StateDraining, ago(10*time.Minute))), drain: &DrainStatus{Pending: 1, Pods: []string{"default/web-1 (PDB default/web)"}},
			want: want{kind: AbandonDrain, reason: contract.ReasonDrainFailed, msg: "default/web-1 (PDB default/web)", patch: &Patch{Unschedulable: new(false), Annotations: map[string]*string{
				contract.AnnotationState: nil, contract.AnnotationStateSince: nil, contract.AnnotationStateReason: nil,
				contract.AnnotationCordonedByUs: nil, contract.AnnotationRebootAuthorized: nil,
				contract.AnnotationNotBefore: set(ts(now.Add(30 * time.Minute)))}}}},
		{name: "drain timeout, policy uncordon, admin-cordoned: stays cordoned",
			node: node(state(contract.StateDraining, ago(11*time.Minute)), noAnn(contract.AnnotationCordonedByUs)), drain: &DrainStatus{Pending: 1},
			want: want{kind: AbandonDrain, patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationState: nil, contract.AnnotationStateSince: nil, contract.AnnotationStateReason: nil,
				contract.AnnotationCordonedByUs: nil, contract.AnnotationRebootAuthorized: nil,
				contract.AnnotationNotBefore: set(ts(now.Add(30 * time.Minute)))}}}},
		{name: "drain timeout, policy hold: Failed, keeps cordon",
			node: node(state(contract.StateDraining, ago(10*time.Minute))), drain: &DrainStatus{Pending: 1},
			cfg: withCfg(func(c *Config) { c.OnDrainFailure = DrainFailureHold }),
			want: want{kind: Fail, reason: contract.ReasonDrainFailed, patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationState: set("Failed"), contract.AnnotationStateSince: set(ts(now)), contract.AnnotationStateReason: set("DrainFailed")}}}},
		{name: "drain timeout, policy reboot: authorize anyway",
			node: node(state(contract.StateDraining, ago(10*time.Minute))), drain: &DrainStatus{Pending: 1},
			cfg:  withCfg(func(c *Config) { c.OnDrainFailure = DrainFailureReboot }),
			want: want{kind: Authorize, reason: contract.ReasonDrainFailed, msg: "rebooting anyway"}},
		{name: "drain timeout, policy reboot, no boot ID: wait",
			node: node(state(contract.StateDraining, ago(10*time.Minute)), boot("")), drain: &DrainStatus{Pending: 1},
			cfg:  withCfg(func(c *Config) { c.OnDrainFailure = DrainFailureReboot }),
			want: want{kind: Wait, reason: contract.ReasonRebootBlocked}},
		{name: "draining node uncordoned by somebody: cordon again",
			node: node(state(contract.StateDraining, ago(time.Minute)), uncordoned),
			want: want{kind: Cordon, patch: &Patch{Unschedulable: new(true), Annotations: map[string]*string{contract.AnnotationCordonedByUs: set("true")}}}},
		{name: "draining admin-cordoned node: drain, no cordoned-by-us",
			node: node(state(contract.StateDraining, ago(time.Minute)), noAnn(contract.AnnotationCordonedByUs)), want: want{kind: Drain}},

		// --- authorized
		{name: "authorized, same boot ID: wait for the reboot timeout",
			node: node(state(contract.StateAuthorized, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-1")),
			want: want{kind: Wait, until: now.Add(29 * time.Minute)}},
		{name: "authorized, new boot ID and Ready: rebooted",
			node: node(state(contract.StateAuthorized, ago(2*time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0")),
			want: want{kind: MarkRebooted, reason: contract.ReasonRebooted, elapsed: 2 * time.Minute, msg: "boot-0 -> boot-1",
				patch: &Patch{Annotations: map[string]*string{contract.AnnotationState: set("Rebooted"), contract.AnnotationStateSince: set(ts(now))}}}},
		{name: "authorized, new boot ID but NotReady: wait",
			node: node(state(contract.StateAuthorized, ago(2*time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0"), notReady(ago(time.Minute))),
			want: want{kind: Wait, until: now.Add(28 * time.Minute)}},
		{name: "authorized, empty boot ID (node restarting): wait",
			node: node(state(contract.StateAuthorized, ago(2*time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-1"), boot("")),
			want: want{kind: Wait, until: now.Add(28 * time.Minute)}},
		{name: "authorized past the reboot timeout: Failed RebootTimeout, authorization removed",
			node: node(state(contract.StateAuthorized, ago(30*time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-1")),
			want: want{kind: Fail, reason: contract.ReasonRebootTimeout, patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationState: set("Failed"), contract.AnnotationStateSince: set(ts(now)), contract.AnnotationStateReason: set("RebootTimeout"),
				contract.AnnotationRebootAuthorized: nil}}}},
		{name: "authorized node uncordoned by somebody: cordon again",
			node: node(state(contract.StateAuthorized, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-1"), uncordoned),
			want: want{kind: Cordon}},

		// --- rebooted
		{name: "rebooted, no soak: finish, uncordon, last-reboot",
			node: node(required(ago(time.Hour)), ann(contract.AnnotationRebootRequested, "y"), ann(contract.AnnotationNotBefore, ts(ago(time.Hour))),
				state(contract.StateRebooted, ago(time.Second)), ann(contract.AnnotationRebootAuthorized, "boot-0")),
			want: want{kind: Finish, reason: contract.ReasonRebootDone, patch: &Patch{Unschedulable: new(false), Annotations: map[string]*string{
				contract.AnnotationState: nil, contract.AnnotationStateSince: nil, contract.AnnotationStateReason: nil,
				contract.AnnotationCordonedByUs: nil, contract.AnnotationRebootAuthorized: nil, contract.AnnotationRebootRequested: nil,
				contract.AnnotationNotBefore: nil, contract.AnnotationLastReboot: set(ts(ago(time.Second)))}}}},
		{name: "rebooted admin-cordoned node: finish without uncordon",
			node: node(state(contract.StateRebooted, ago(time.Second)), noAnn(contract.AnnotationCordonedByUs), ann(contract.AnnotationRebootAuthorized, "boot-0")),
			want: want{kind: Finish, msg: "left cordoned", patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationState: nil, contract.AnnotationStateSince: nil, contract.AnnotationStateReason: nil,
				contract.AnnotationCordonedByUs: nil, contract.AnnotationRebootAuthorized: nil, contract.AnnotationRebootRequested: nil,
				contract.AnnotationNotBefore: nil, contract.AnnotationLastReboot: set(ts(ago(time.Second)))}}}},
		{name: "rebooted, soaking: wait until the soak ends",
			node: node(state(contract.StateRebooted, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0")),
			cfg:  withCfg(func(c *Config) { c.PostRebootSoak = 5 * time.Minute }),
			want: want{kind: Wait, until: now.Add(4 * time.Minute)}},
		{name: "rebooted, soak restarts after a Ready flap",
			node: node(state(contract.StateRebooted, ago(10*time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0"), readySince(ago(time.Minute))),
			cfg:  withCfg(func(c *Config) { c.PostRebootSoak = 5 * time.Minute }),
			want: want{kind: Wait, until: now.Add(4 * time.Minute)}},
		{name: "rebooted, soak over: finish; last-reboot is when the new boot was seen",
			node: node(state(contract.StateRebooted, ago(5*time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0")),
			cfg:  withCfg(func(c *Config) { c.PostRebootSoak = 5 * time.Minute }),
			want: want{kind: Finish, patch: &Patch{Unschedulable: new(false), Annotations: map[string]*string{
				contract.AnnotationState: nil, contract.AnnotationStateSince: nil, contract.AnnotationStateReason: nil,
				contract.AnnotationCordonedByUs: nil, contract.AnnotationRebootAuthorized: nil, contract.AnnotationRebootRequested: nil,
				contract.AnnotationNotBefore: nil, contract.AnnotationLastReboot: set(ts(ago(5 * time.Minute)))}}}},
		{name: "rebooted, NotReady: wait up to the reboot timeout",
			node: node(state(contract.StateRebooted, ago(5*time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0"), notReady(ago(time.Minute))),
			want: want{kind: Wait, until: now.Add(25 * time.Minute)}},
		{name: "rebooted, NotReady past the reboot timeout: Failed",
			node: node(state(contract.StateRebooted, ago(30*time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0"), notReady(ago(time.Minute))),
			want: want{kind: Fail, reason: contract.ReasonRebootTimeout}},

		// --- failed
		{name: "failed: wait for an operator, no requeue",
			node: node(state(contract.StateFailed, ago(time.Hour)), ann(contract.AnnotationStateReason, "RebootTimeout")),
			want: want{kind: Wait, until: time.Time{}, msg: "operator"}},
		{name: "failed node with the condition: still waits",
			node: node(required(ago(2*time.Hour)), state(contract.StateFailed, ago(time.Hour))), want: want{kind: Wait}},

		// --- garbage
		{name: "unknown state on a schedulable node: removed",
			node: node(ann(contract.AnnotationState, "Rebooting"), ann(contract.AnnotationRebootAuthorized, "boot-1")),
			want: want{kind: Reset, reason: contract.ReasonInvalidAnnotation, patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationState: nil, contract.AnnotationStateSince: nil, contract.AnnotationStateReason: nil, contract.AnnotationRebootAuthorized: nil}}}},
		{name: "empty state value is garbage",
			node: node(ann(contract.AnnotationState, "")), want: want{kind: Reset}},
		{name: "unknown state on a node we cordoned: Failed, authorization removed",
			node: node(state("draining", ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-1")),
			want: want{kind: Reset, patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationState: set("Failed"), contract.AnnotationStateSince: set(ts(now)),
				contract.AnnotationStateReason: set(contract.ReasonInvalidAnnotation), contract.AnnotationRebootAuthorized: nil}}}},
		{name: "unknown state on an admin-cordoned node: Failed",
			node: node(cordoned, ann(contract.AnnotationState, "???")),
			want: want{kind: Reset, patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationState: set("Failed"), contract.AnnotationStateSince: set(ts(now)),
				contract.AnnotationStateReason: set(contract.ReasonInvalidAnnotation)}}}},
		{name: "unparsable state-since: set to now",
			node: node(state(contract.StateDraining, now), ann(contract.AnnotationStateSince, "yesterday")),
			want: want{kind: Reset, patch: &Patch{Annotations: map[string]*string{contract.AnnotationStateSince: set(ts(now))}}}},
		{name: "missing state-since: set to now",
			node: node(state(contract.StateAuthorized, now), noAnn(contract.AnnotationStateSince), ann(contract.AnnotationRebootAuthorized, "boot-1")),
			want: want{kind: Reset, patch: &Patch{Annotations: map[string]*string{contract.AnnotationStateSince: set(ts(now))}}}},
		{name: "unparsable last-reboot: removed",
			node: node(required(ago(time.Hour)), ann(contract.AnnotationLastReboot, "soon")),
			want: want{kind: Reset, patch: &Patch{Annotations: map[string]*string{contract.AnnotationLastReboot: nil}}}},
		{name: "unparsable not-before: removed",
			node: node(ann(contract.AnnotationNotBefore, "2026-13-01")),
			want: want{kind: Reset, patch: &Patch{Annotations: map[string]*string{contract.AnnotationNotBefore: nil}}}},
		{name: "authorization while draining: removed (only Authorize writes it)",
			node: node(state(contract.StateDraining, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-1")),
			want: want{kind: Reset, patch: &Patch{Annotations: map[string]*string{contract.AnnotationRebootAuthorized: nil}}}},
		{name: "authorization while failed: removed",
			node: node(state(contract.StateFailed, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-1")),
			want: want{kind: Reset, patch: &Patch{Annotations: map[string]*string{contract.AnnotationRebootAuthorized: nil}}}},
		{name: "authorized without authorization: drain again",
			node: node(state(contract.StateAuthorized, ago(time.Minute))),
			want: want{kind: Reset, patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationState: set("Draining"), contract.AnnotationStateSince: set(ts(now))}}}},
		{name: "rebooted but authorization is the current boot ID: drain again, authorization removed",
			node: node(state(contract.StateRebooted, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-1")),
			want: want{kind: Reset, patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationState: set("Draining"), contract.AnnotationStateSince: set(ts(now)), contract.AnnotationRebootAuthorized: nil}}}},
		{name: "rebooted without authorization: drain again",
			node: node(state(contract.StateRebooted, ago(time.Minute))),
			want: want{kind: Reset, patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationState: set("Draining"), contract.AnnotationStateSince: set(ts(now))}}}},
		{name: "several problems in one reset",
			node: node(state(contract.StateDraining, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "x"), ann(contract.AnnotationLastReboot, "x")),
			want: want{kind: Reset, msg: "; ", patch: &Patch{Annotations: map[string]*string{
				contract.AnnotationRebootAuthorized: nil, contract.AnnotationLastReboot: nil}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			if c == nil {
				c = &cfg0
			}
			got := Node(held(Input{Node: tc.node, Config: c, Now: now, Drain: tc.drain}))
			w := tc.want
			if got.Kind != w.kind {
				t.Fatalf("kind = %s, want %s (action: %v)", got.Kind, w.kind, got)
			}
			if w.reason != "" && got.Reason != w.reason {
				t.Errorf("reason = %q, want %q", got.Reason, w.reason)
			}
			if (w.kind == Wait || w.kind == Queue) && !got.Until.Equal(w.until) {
				t.Errorf("until = %v, want %v", got.Until, w.until)
			}
			if w.kind == Queue && !got.RequestTime.Equal(w.reqTime) {
				t.Errorf("request time = %v, want %v", got.RequestTime, w.reqTime)
			}
			if w.elapsed != 0 && got.Elapsed != w.elapsed {
				t.Errorf("elapsed = %v, want %v", got.Elapsed, w.elapsed)
			}
			if w.msg != "" && !strings.Contains(got.Message, w.msg) {
				t.Errorf("message %q does not contain %q", got.Message, w.msg)
			}
			if w.patch != nil && !reflect.DeepEqual(got.Patch, w.patch) {
				t.Errorf("patch = %s, want %s", dump(got.Patch), dump(w.patch))
			}
			writes := got.Kind != Nothing && got.Kind != Wait && got.Kind != Queue && got.Kind != Drain
			if writes != (got.Patch != nil) {
				t.Errorf("%s has patch %v", got.Kind, got.Patch)
			}
		})
	}
}

func dump(p *Patch) string {
	if p == nil {
		return "nil"
	}
	var b strings.Builder
	if p.Unschedulable != nil {
		b.WriteString("unschedulable=")
		if *p.Unschedulable {
			b.WriteString("true ")
		} else {
			b.WriteString("false ")
		}
	}
	for k, v := range p.Annotations {
		if v == nil {
			b.WriteString(k + "- ")
		} else {
			b.WriteString(k + "=" + *v + " ")
		}
	}
	return b.String()
}

// No garbage ever leads to an authorization: whatever the annotations, a
// node without a finished drain is never authorized, and a Reset never
// writes reboot-authorized.
func TestGarbageNeverAuthorizes(t *testing.T) {
	values := []string{"", "Draining", "Authorized", "Rebooted", "Failed", "bogus", "boot-1", "boot-0", "2026-11-25T17:00:00Z", "x"}
	keys := []string{contract.AnnotationState, contract.AnnotationStateSince, contract.AnnotationRebootAuthorized, contract.AnnotationCordonedByUs}
	var walk func(i int, opts []nodeOpt)
	count := 0
	walk = func(i int, opts []nodeOpt) {
		if i == len(keys) {
			for _, unsched := range []bool{false, true} {
				n := node(append(opts, required(ago(time.Hour)))...)
				n.Spec.Unschedulable = unsched
				a := Node(held(Input{Node: n, Config: &cfg0, Now: now}))
				count++
				if a.Kind == Authorize {
					t.Fatalf("authorized without a drain pass: %v on %v", a, n.Annotations)
				}
				if a.Patch != nil {
					if v, ok := a.Patch.Annotations[contract.AnnotationRebootAuthorized]; ok && v != nil {
						t.Fatalf("%s wrote %s=%s on %v", a.Kind, contract.AnnotationRebootAuthorized, *v, n.Annotations)
					}
				}
			}
			return
		}
		walk(i+1, opts) // absent
		for _, v := range values {
			walk(i+1, append(append([]nodeOpt(nil), opts...), ann(keys[i], v)))
		}
	}
	walk(0, nil)
	if count < 1000 {
		t.Fatalf("only %d combinations", count)
	}
}

func TestTakePatch(t *testing.T) {
	got := TakePatch(node(), now, &cfg0)
	want := &Patch{Unschedulable: new(true), Annotations: map[string]*string{
		contract.AnnotationState: set("Draining"), contract.AnnotationStateSince: set(ts(now)),
		contract.AnnotationStateReason: nil, contract.AnnotationNotBefore: nil, contract.AnnotationCordonedByUs: set("true")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("schedulable node: %s, want %s", dump(got), dump(want))
	}
	got = TakePatch(node(cordoned), now, &cfg0)
	delete(want.Annotations, contract.AnnotationCordonedByUs)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("admin-cordoned node: %s, want %s (no cordoned-by-us)", dump(got), dump(want))
	}
}

// mustWindow is a daily window in UTC.
func mustWindow(t *testing.T, start, end string) *window.Window {
	t.Helper()
	w, err := window.Parse(nil, start, end, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestAdmit(t *testing.T) {
	c := func(name string, age time.Duration) Candidate { return Candidate{Name: name, RequestTime: ago(age)} }
	withCfg := func(f func(*Config)) *Config { x := cfg0; f(&x); return &x }
	for _, tc := range []struct {
		name        string
		cands       []Candidate
		cl          Cluster
		cfg         *Config
		take        []string
		waiting     []string
		blocked     string
		until       time.Time
		nodeBlocked []string
	}{
		{name: "no candidates", take: nil},
		{name: "one free slot: the oldest request", cands: []Candidate{c("b", time.Minute), c("a", time.Hour), c("c", time.Second)},
			take: []string{"a"}, waiting: []string{"b", "c"}},
		{name: "ties broken by name", cands: []Candidate{c("z", time.Hour), c("m", time.Hour), c("a", time.Hour)},
			take: []string{"a"}, waiting: []string{"m", "z"}},
		{name: "slot taken: nobody", cands: []Candidate{c("a", time.Hour)}, cl: Cluster{Out: 1}, waiting: []string{"a"}},
		{name: "more out than allowed (e.g. failed nodes): nobody", cands: []Candidate{c("a", time.Hour)}, cl: Cluster{Out: 3}, waiting: []string{"a"}},
		{name: "max concurrent 2, one out: one more", cands: []Candidate{c("a", time.Hour), c("b", 2*time.Hour)}, cl: Cluster{Out: 1},
			cfg: withCfg(func(c *Config) { c.MaxConcurrent = 2 }), take: []string{"b"}, waiting: []string{"a"}},
		{name: "max concurrent 2, none out: two", cands: []Candidate{c("a", time.Hour), c("b", 2*time.Hour), c("c", 3*time.Hour)},
			cfg: withCfg(func(c *Config) { c.MaxConcurrent = 2 }), take: []string{"c", "b"}, waiting: []string{"a"}},
		{name: "a NotReady node blocks", cands: []Candidate{c("a", time.Hour)}, cl: Cluster{NotReady: []string{"x"}},
			waiting: []string{"a"}, blocked: BlockedNotReady},
		{name: "a NotReady node with --allow-unhealthy-cluster does not block", cands: []Candidate{c("a", time.Hour)}, cl: Cluster{NotReady: []string{"x"}},
			cfg: withCfg(func(c *Config) { c.AllowUnhealthyCluster = true }), take: []string{"a"}},
		{name: "NotReady without candidates is not reported", cl: Cluster{NotReady: []string{"x"}}},
		{name: "outside the window: nobody, look again when it opens", cands: []Candidate{c("a", time.Hour)},
			cfg:     withCfg(func(c *Config) { c.Window = mustWindow(t, "19:00", "20:00") }),
			waiting: []string{"a"}, blocked: BlockedWindow, until: now.Add(time.Hour)},
		{name: "inside the window", cands: []Candidate{c("a", time.Hour)},
			cfg:  withCfg(func(c *Config) { c.Window = mustWindow(t, "17:00", "18:00:01") }),
			take: []string{"a"}},
		{name: "window without candidates is not reported",
			cfg: withCfg(func(c *Config) { c.Window = mustWindow(t, "19:00", "20:00") })},
		{name: "several cluster blocks, sorted by reason; the earliest until", cands: []Candidate{c("a", time.Hour)},
			cl: Cluster{NotReady: []string{"x"}, Blocks: []Block{
				{Reason: BlockedPaused, Message: "paused"}, {Reason: BlockedAlerts, Message: "alerts", Until: now.Add(time.Minute)}}},
			cfg:     withCfg(func(c *Config) { c.Window = mustWindow(t, "19:00", "20:00") }),
			waiting: []string{"a"}, blocked: "ActiveAlerts,NodeNotReady,OutsideRebootWindow,Paused", until: now.Add(time.Minute)},
		{name: "a node blocked by its own gate lets the next one go", cands: []Candidate{
			{Name: "a", RequestTime: ago(time.Hour), Block: &Block{Reason: BlockedPods, Message: "pod x", Until: now.Add(time.Minute)}},
			c("b", time.Minute), c("c", time.Second)},
			take: []string{"b"}, waiting: []string{"a", "c"}, nodeBlocked: []string{"a"}, until: now.Add(time.Minute)},
		{name: "node blocks are not reported when no slot is free", cands: []Candidate{
			{Name: "a", RequestTime: ago(time.Hour), Block: &Block{Reason: BlockedPods, Message: "pod x"}}},
			cl: Cluster{Out: 1}, waiting: []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg == nil {
				cfg = &cfg0
			}
			got := Admit(tc.cands, tc.cl, cfg, now)
			var reasons []string
			for _, b := range got.Blocks {
				reasons = append(reasons, b.Reason)
			}
			if !reflect.DeepEqual(got.Take, tc.take) || !reflect.DeepEqual(got.Waiting, tc.waiting) || strings.Join(reasons, ",") != tc.blocked {
				t.Errorf("Admit = take %v waiting %v blocked %v; want take %v waiting %v blocked %q",
					got.Take, got.Waiting, reasons, tc.take, tc.waiting, tc.blocked)
			}
			if len(tc.cl.NotReady) > 0 && got.Blocked() && !strings.Contains(got.BlockedMessage(), tc.cl.NotReady[0]) {
				t.Errorf("blocked message %q does not name the NotReady node", got.BlockedMessage())
			}
			if !got.Until.Equal(tc.until) {
				t.Errorf("until = %v, want %v", got.Until, tc.until)
			}
			if len(got.NodeBlocks) != len(tc.nodeBlocked) {
				t.Errorf("node blocks %v, want %v", got.NodeBlocks, tc.nodeBlocked)
			}
			for _, n := range tc.nodeBlocked {
				if _, ok := got.NodeBlocks[n]; !ok {
					t.Errorf("node blocks %v lack %s", got.NodeBlocks, n)
				}
			}
		})
	}
}

// The invariant of admission: whatever the inputs, out + taken never
// exceeds MaxConcurrent.
func TestAdmitNeverExceedsMaxConcurrent(t *testing.T) {
	for maxc := 1; maxc <= 4; maxc++ {
		for out := 0; out <= 5; out++ {
			for n := 0; n <= 6; n++ {
				var cands []Candidate
				for i := range n {
					cands = append(cands, Candidate{Name: string(rune('a' + i)), RequestTime: ago(time.Duration(i) * time.Minute)})
				}
				cfg := cfg0
				cfg.MaxConcurrent = maxc
				ad := Admit(cands, Cluster{Out: out}, &cfg, now)
				if out+len(ad.Take) > maxc && len(ad.Take) > 0 {
					t.Errorf("max %d, out %d, %d candidates: took %d", maxc, out, n, len(ad.Take))
				}
				if len(ad.Take)+len(ad.Waiting) != n {
					t.Errorf("lost candidates: %v + %v of %d", ad.Take, ad.Waiting, n)
				}
			}
		}
	}
}

// held gives the input's node a slot in the slot record when it carries
// anything of the pipeline, as the controller does for the nodes it took:
// the table tests are about the state machine, not about provenance
// (trust_test.go is).
func held(in Input) Input {
	if in.Node == nil || in.Slot != nil {
		return in
	}
	_, since := in.Node.Annotations[contract.AnnotationStateSince]
	_, reason := in.Node.Annotations[contract.AnnotationStateReason]
	if Marked(in.Node) || since || reason {
		in.Slot = &Slot{Since: in.Now.Add(-1000 * time.Hour)}
	}
	return in
}
