package controller

import (
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/controller/decide"
)

// The pod watch a drain started is kept through the reboot when the release
// gate reads the node's DaemonSet pods (no new list between the new boot and
// the release), and stopped when the drain ends otherwise; it always stops
// once the node is released.
func TestPodWatchKeptForTheReleaseGate(t *testing.T) {
	for _, tc := range []struct {
		name string
		gate decide.ReleaseGate
		kept bool
	}{
		{"gate reads DaemonSet pods", decide.ReleaseGate{DaemonSetPods: true, Timeout: time.Minute}, true},
		{"gate without pods", decide.ReleaseGate{Taints: []string{"example.com/*"}, Timeout: time.Minute}, false},
		{"gate off", decide.ReleaseGate{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(1)
			cfg.Decide.Release = tc.gate
			n := inState(requiring("n1"), contract.StateDraining, fixtureNow)
			clk := clocktesting.NewFakeClock(fixtureNow.Add(10 * time.Second))
			f := newFixture(t, cfg, clk, n, testPod("web-1", "n1"), slotRecord(1, fixtureNow, "n1"))
			f.refresh("n1")
			wantWrites(t, f.syncDrained("n1"), "create pods/eviction web-1", "patch nodes n1")
			f.refresh("n1")
			f.sync("n1") // Authorized: the drain has ended
			if got := slices.Contains(f.c.pods.Watching(), "n1"); got != tc.kept {
				t.Fatalf("Authorized: pods of n1 watched %v, want %v", got, tc.kept)
			}
			f.writes()
			f.update("n1", func(n *v1.Node) {
				n.Status.NodeInfo.BootID = "n1-boot-1"
			})
			f.sync("n1") // the new boot: Rebooted
			wantWrites(t, f.writes(), "patch nodes n1")
			f.refresh("n1")
			clk.Step(time.Second)
			f.sync("n1") // released
			wantWrites(t, f.writes(), "patch nodes n1", "update configmaps "+contract.SlotsConfigMapName)
			f.refresh("n1")
			f.sync("n1")
			if w := f.c.pods.Watching(); len(w) != 0 {
				t.Fatalf("pods still watched after the release: %v", w)
			}
		})
	}
}
