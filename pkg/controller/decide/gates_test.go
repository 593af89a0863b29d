package decide

import (
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

var (
	gateCfg = func() *Config {
		c := cfg0
		c.PreRebootLabels = map[string]string{"maintenance": "reboot", "draining": "true"}
		c.PostRebootLabels = map[string]string{"rebooted": "yes", "maintenance": "done"}
		c.ScaleDownProtection = true
		c.ScaleDownProtectionAfter = 10 * time.Minute
		return &c
	}()
	sd   = contract.AnnotationScaleDownDisabled
	sdUs = contract.AnnotationScaleDownDisabledByUs
	lb   = contract.AnnotationLabelsBefore
)

func TestTakePatchLabelsAndProtection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		node   *v1.Node
		cfg    *Config
		labels map[string]*string
		ann    map[string]*string // besides the take's own
	}{
		{name: "nothing configured: only the take", node: node(), cfg: &cfg0},
		{name: "pre labels set, earlier values recorded (null: absent); post labels this value removed",
			node: node(label("maintenance", "none"), label("rebooted", "yes")), cfg: gateCfg,
			labels: map[string]*string{"maintenance": set("reboot"), "draining": set("true"), "rebooted": nil},
			ann: map[string]*string{lb: set(`{"draining":null,"maintenance":"none","rebooted":"yes"}`),
				sd: set("true"), sdUs: set("true")}},
		{name: "a post label with another value is not ours: left alone",
			node: node(label("rebooted", "by-hand")), cfg: gateCfg,
			labels: map[string]*string{"maintenance": set("reboot"), "draining": set("true")},
			ann:    map[string]*string{lb: set(`{"draining":null,"maintenance":null}`), sd: set("true"), sdUs: set("true")}},
		{name: "an administrator's scale-down annotation: not ours, untouched",
			node: node(ann(sd, "true")), cfg: withProtectionOnly(),
			ann: map[string]*string{}},
		{name: "our protection from the last reboot still on: ours again",
			node: node(ann(sd, "true"), ann(sdUs, ts(now.Add(time.Minute)))), cfg: withProtectionOnly(),
			ann: map[string]*string{sd: set("true"), sdUs: set("true")}},
		{name: "scale-down annotation false: protected by us",
			node: node(ann(sd, "false")), cfg: withProtectionOnly(),
			ann: map[string]*string{sd: set("true"), sdUs: set("true")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := TakePatch(tc.node, now, tc.cfg)
			want := TakePatch(tc.node, now, &cfg0)
			for k, v := range tc.ann {
				want.Annotations[k] = v
			}
			want.Labels = tc.labels
			if !reflect.DeepEqual(got, want) {
				t.Errorf("patch %s labels %v, want %s labels %v", dump(got), dumpLabels(got.Labels), dump(want), dumpLabels(want.Labels))
			}
		})
	}
}

func withProtectionOnly() *Config {
	c := cfg0
	c.ScaleDownProtection = true
	c.ScaleDownProtectionAfter = 10 * time.Minute
	return &c
}

func dumpLabels(l map[string]*string) string {
	var b strings.Builder
	for k, v := range l {
		if v == nil {
			b.WriteString(k + "- ")
		} else {
			b.WriteString(k + "=" + *v + " ")
		}
	}
	return b.String()
}

// Whatever way a node leaves the pipeline, it gets its labels back and its
// protection ends (later); a completed reboot adds the post labels.
func TestLeavingThePipeline(t *testing.T) {
	taken := func(extra ...nodeOpt) []nodeOpt {
		return append([]nodeOpt{label("maintenance", "reboot"), label("draining", "true"),
			ann(lb, `{"draining":null,"maintenance":"none","rebooted":"yes"}`), ann(sd, "true"), ann(sdUs, "true")}, extra...)
	}
	restored := map[string]*string{"draining": nil, "maintenance": set("none"), "rebooted": set("yes")}
	protectedUntil := set(ts(now.Add(10 * time.Minute)))
	for _, tc := range []struct {
		name   string
		node   []nodeOpt
		cfg    *Config
		drain  *DrainStatus
		kind   Kind
		labels map[string]*string
		ann    map[string]*string // checked keys (the autoscaler's own is never in the patch: it stays until the protection ends)
	}{
		{name: "finish: labels restored, then the post labels", cfg: gateCfg,
			node: taken(state(contract.StateRebooted, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0")),
			kind: Finish, labels: map[string]*string{"draining": nil, "maintenance": set("done"), "rebooted": set("yes")},
			ann: map[string]*string{lb: nil, sdUs: protectedUntil}},
		{name: "finish, protection after 0: removed at once", cfg: func() *Config { c := *gateCfg; c.ScaleDownProtectionAfter = 0; return &c }(),
			node: taken(state(contract.StateRebooted, ago(time.Minute)), ann(contract.AnnotationRebootAuthorized, "boot-0")),
			kind: Finish, ann: map[string]*string{sd: nil, sdUs: nil}},
		{name: "drain failure (uncordon): labels restored, no post labels", cfg: gateCfg,
			node:  taken(state(contract.StateDraining, ago(time.Hour))),
			drain: &DrainStatus{Pending: 1}, kind: AbandonDrain, labels: restored,
			ann: map[string]*string{lb: nil, sdUs: protectedUntil}},
		{name: "state removed by an operator: released, labels restored", cfg: gateCfg,
			node: taken(cordoned, ann(contract.AnnotationCordonedByUs, "true"), ann(contract.AnnotationStateSince, ts(ago(time.Hour)))),
			kind: Release, labels: restored, ann: map[string]*string{lb: nil, sdUs: protectedUntil}},
		{name: "an operator's cordon-free leftover of ours: only the protection", cfg: gateCfg,
			node: []nodeOpt{ann(sd, "true"), ann(sdUs, "true")},
			kind: Release, ann: map[string]*string{sdUs: protectedUntil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Node(held(Input{Node: node(tc.node...), Config: tc.cfg, Now: now, Drain: tc.drain}))
			if a.Kind != tc.kind {
				t.Fatalf("kind %s (%v), want %s", a.Kind, a, tc.kind)
			}
			if tc.labels != nil && !reflect.DeepEqual(a.Patch.Labels, tc.labels) {
				t.Errorf("labels %s, want %s", dumpLabels(a.Patch.Labels), dumpLabels(tc.labels))
			}
			for k, v := range tc.ann {
				got, ok := a.Patch.Annotations[k]
				if !ok || !reflect.DeepEqual(got, v) {
					t.Errorf("annotation %s: %v (in patch: %t), want %v", k, deref(got), ok, deref(v))
				}
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<remove>"
	}
	return *s
}

func TestScaleDownProtectionEnds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		node  *v1.Node
		kind  Kind
		until time.Time
		patch *Patch
	}{
		{name: "due: removed", node: node(ann(sd, "true"), ann(sdUs, ts(ago(time.Second)))),
			kind: Unprotect, patch: &Patch{Annotations: map[string]*string{sd: nil, sdUs: nil}}},
		{name: "due, somebody changed the value: only our record removed", node: node(ann(sd, "false"), ann(sdUs, ts(ago(time.Second)))),
			kind: Unprotect, patch: &Patch{Annotations: map[string]*string{sdUs: nil}}},
		{name: "not due: wait until then", node: node(ann(sd, "true"), ann(sdUs, ts(now.Add(time.Minute)))),
			kind: Wait, until: now.Add(time.Minute)},
		{name: "not due and queued: queued, looked at again then", node: node(required(ago(time.Hour)), ann(sd, "true"), ann(sdUs, ts(now.Add(time.Minute)))),
			kind: Queue, until: now.Add(time.Minute)},
		{name: "not due, not selected: still ends", node: node(label(contract.LabelDisabled, "true"), ann(sdUs, ts(now.Add(time.Minute)))),
			kind: Wait, until: now.Add(time.Minute)},
		{name: "garbage value: ends now", node: node(ann(sd, "true"), ann(sdUs, "soon")),
			kind: Reset, patch: &Patch{Annotations: map[string]*string{sdUs: set(ts(now))}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Node(held(Input{Node: tc.node, Config: &cfg0, Now: now}))
			if a.Kind != tc.kind || !a.Until.Equal(tc.until) {
				t.Fatalf("%v, want %s until %v", a, tc.kind, tc.until)
			}
			if tc.patch != nil && !reflect.DeepEqual(a.Patch, tc.patch) {
				t.Errorf("patch %s, want %s", dump(a.Patch), dump(tc.patch))
			}
		})
	}
}

func TestLabelsBeforeGarbage(t *testing.T) {
	a := Node(held(Input{Node: node(state(contract.StateDraining, ago(time.Minute)), ann(lb, "{not json")), Config: &cfg0, Now: now}))
	if a.Kind != Reset || a.Patch.Annotations[lb] != nil {
		t.Fatalf("%v, want a Reset removing %s", a, lb)
	}
	if _, ok := a.Patch.Annotations[lb]; !ok {
		t.Fatalf("%v does not remove %s", a, lb)
	}
}

func TestDrainDelayAndGates(t *testing.T) {
	withDelay := func() *Config { c := cfg0; c.DrainDelay = time.Minute; return &c }()
	hold := func() *Config { c := cfg0; c.OnDrainFailure = DrainFailureHold; return &c }()
	force := func() *Config { c := cfg0; c.OnDrainFailure = DrainFailureReboot; return &c }()
	alert := &Block{Reason: BlockedAlerts, Message: "active Prometheus alerts: X", Until: now.Add(time.Minute)}
	pods := &Block{Reason: BlockedPods, Message: "blocking pods on the node: a/b"}
	for _, tc := range []struct {
		name   string
		node   *v1.Node
		cfg    *Config
		drain  *DrainStatus
		gate   *Block
		kind   Kind
		reason string
		until  time.Time
		msg    string
	}{
		{name: "within the drain delay: wait until it is over", node: node(state(contract.StateDraining, ago(20*time.Second))), cfg: withDelay,
			kind: Wait, until: now.Add(40 * time.Second), msg: "--drain-delay"},
		{name: "drain delay over: drain", node: node(state(contract.StateDraining, ago(time.Minute))), cfg: withDelay, kind: Drain},
		{name: "drained, gate closed: wait for its recheck, RebootBlocked", node: node(state(contract.StateDraining, ago(time.Minute))),
			drain: &DrainStatus{}, gate: alert, kind: Wait, reason: contract.ReasonRebootBlocked, until: now.Add(time.Minute), msg: "drained, but active"},
		{name: "drained, gate without recheck: wait up to the drain deadline", node: node(state(contract.StateDraining, ago(time.Minute))),
			drain: &DrainStatus{}, gate: pods, kind: Wait, reason: contract.ReasonRebootBlocked, until: now.Add(9 * time.Minute)},
		{name: "drained, gate closed at the drain deadline: given back", node: node(state(contract.StateDraining, ago(10*time.Minute))),
			drain: &DrainStatus{}, gate: alert, kind: AbandonDrain, reason: contract.ReasonRebootBlocked, msg: "still blocked"},
		{name: "gate closed at the deadline, hold: Failed", node: node(state(contract.StateDraining, ago(10*time.Minute))), cfg: hold,
			drain: &DrainStatus{}, gate: alert, kind: Fail, reason: contract.ReasonRebootBlocked},
		{name: "--on-drain-failure=reboot never reboots against a gate", node: node(state(contract.StateDraining, ago(10*time.Minute))), cfg: force,
			drain: &DrainStatus{Pending: 2}, gate: alert, kind: AbandonDrain, reason: contract.ReasonRebootBlocked},
		{name: "--on-drain-failure=reboot before the deadline: drain on", node: node(state(contract.StateDraining, ago(time.Minute))), cfg: force,
			drain: &DrainStatus{Pending: 2}, gate: alert, kind: Wait, until: now.Add(9 * time.Minute), msg: "2 pods left"},
		{name: "drained, gate open: authorize", node: node(state(contract.StateDraining, ago(time.Minute))), drain: &DrainStatus{}, kind: Authorize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			if c == nil {
				c = &cfg0
			}
			a := Node(held(Input{Node: tc.node, Config: c, Now: now, Drain: tc.drain, Gate: tc.gate}))
			reasonOK := a.Reason == tc.reason || (tc.reason == "" && tc.kind != Wait)
			if a.Kind != tc.kind || !reasonOK || !a.Until.Equal(tc.until) || !strings.Contains(a.Message, tc.msg) {
				t.Errorf("%v (reason %q), want %s (%q) until %v with %q", a, a.Reason, tc.kind, tc.reason, tc.until, tc.msg)
			}
		})
	}
}
