package controller

import (
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func kubeletEvent(node, msg string) *v1.Event {
	return &v1.Event{InvolvedObject: v1.ObjectReference{Kind: "Node", Name: node}, Reason: "Rebooted",
		Type: v1.EventTypeWarning, Source: v1.EventSource{Component: "kubelet", Host: node}, Message: msg}
}

func TestWitness(t *testing.T) {
	type step struct {
		ours    []string // node/boot the controller saw
		kubelet []*v1.Event
	}
	rebooted := func(node, boot string) *v1.Event {
		return kubeletEvent(node, "Node "+node+" has been rebooted, boot id: "+boot)
	}
	for _, tc := range []struct {
		name  string
		steps []step // the grace passes after each step
		want  []string
	}{
		{"both witnesses, controller first", []step{{ours: []string{"n1/b2"}, kubelet: []*v1.Event{rebooted("n1", "b2")}}}, nil},
		{"both witnesses, kubelet first", []step{{kubelet: []*v1.Event{rebooted("n1", "b2")}, ours: []string{"n1/b2"}}}, nil},
		{"no kubelet event", []step{{ours: []string{"n1/b2"}}}, []string{WitnessKubeletEventMissing}},
		{"the kubelet names another boot", []step{{ours: []string{"n1/b2"}, kubelet: []*v1.Event{rebooted("n1", "b3")}}},
			[]string{WitnessKubeletEventMissing, WitnessUnexpectedReboot}},
		{"a reboot the controller did not authorize", []step{{kubelet: []*v1.Event{rebooted("n2", "b9")}}}, []string{WitnessUnexpectedReboot}},
		{"the kubelet event after the grace: both count", []step{{ours: []string{"n1/b2"}}, {kubelet: []*v1.Event{rebooted("n1", "b2")}}},
			[]string{WitnessKubeletEventMissing, WitnessUnexpectedReboot}},
		{"a repeated event of a matched boot is no news",
			[]step{{ours: []string{"n1/b2"}, kubelet: []*v1.Event{rebooted("n1", "b2")}}, {kubelet: []*v1.Event{rebooted("n1", "b2")}}}, nil},
		{"seen twice, counted once", []step{{ours: []string{"n1/b2", "n1/b2"}}}, []string{WitnessKubeletEventMissing}},
		{"events of others are not the kubelet's", []step{{ours: []string{"n1/b2"}, kubelet: []*v1.Event{
			func() *v1.Event { e := rebooted("n1", "b2"); e.Source.Component = "nodereboot-detector"; return e }(),
			func() *v1.Event { e := rebooted("n1", "b2"); e.Reason = "Other"; return e }(),
			kubeletEvent("n1", "rebooted, no boot named"),
		}}}, []string{WitnessKubeletEventMissing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			w := newWitness(clocktesting.NewFakeClock(time.Now()), time.Minute, func(k string) { got = append(got, k) })
			var due []func()
			w.schedule = func(d time.Duration, f func()) {
				if d == time.Minute {
					due = append(due, f)
				}
			}
			for _, s := range tc.steps {
				for _, nb := range s.ours {
					w.controllerSaw(nb[:2], nb[3:])
				}
				for _, e := range s.kubelet {
					w.kubeletSaw(e)
				}
				for _, f := range due {
					f()
				}
				due = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mismatches %v, want %v", got, tc.want)
			}
		})
	}
}
