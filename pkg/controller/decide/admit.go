package decide

// Admission: which waiting nodes take a free slot, and the gates that
// keep every node waiting.

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

// Candidate is a node that is waiting for a slot (its Node action is Queue).
type Candidate struct {
	Name        string
	RequestTime time.Time
	// ControlPlane: the node is a control-plane node (IsControlPlane).
	ControlPlane bool
	// Domain is the node's topology domain (DomainOf).
	Domain string
	// Pools names the pool budgets the node falls under (PoolsOf).
	Pools []string
	// Block, when not nil, is a gate closed for this node alone (blocking
	// pods): it is not taken, and the nodes after it in the queue may be.
	Block *Block
}

// Cluster is what admission needs to know about the other nodes and the
// cluster-wide gates.
type Cluster struct {
	// Out is the number of nodes out: with a state annotation, plus the
	// nodes taken whose take the cache does not show yet.
	Out int
	// OutControlPlane is how many of them are control-plane nodes.
	OutControlPlane int
	// OutByDomain counts them per topology domain, OutByPool per pool
	// budget (a node in two pools counts in both). A node of the slot
	// record that is gone counts in Out alone: it is in no domain or
	// pool any more. AddOut counts a node in all of them.
	OutByDomain, OutByPool map[string]int
	// CordonedByOthers names the selected nodes, not out, that somebody
	// else cordoned (gates.CordonedByOthers).
	CordonedByOthers []string
	// PoolsInUpgrade names the pools whose nodes disagree on their version
	// (gates.PoolsInUpgrade).
	PoolsInUpgrade []string
	// NotReady names the selected nodes that are not out and not Ready.
	NotReady []string
	// Blocks are the cluster-wide gates the controller found closed
	// (pause, alerts).
	Blocks []Block
}

// Reasons for which a reboot can be blocked (label values of
// nodereboot_reboot_blocked).
const (
	// BlockedNotReady: a selected node that is not being rebooted is
	// NotReady.
	BlockedNotReady = "NodeNotReady"
	// BlockedPaused: the controller is paused (contract.AnnotationPaused).
	BlockedPaused = "Paused"
	// BlockedWindow: outside the reboot window.
	BlockedWindow = "OutsideRebootWindow"
	// BlockedPods: a pod matching --blocking-pod-selector is on the node.
	BlockedPods = "BlockingPod"
	// BlockedAlerts: Prometheus has alerts that block reboots.
	BlockedAlerts = "ActiveAlerts"
	// BlockedPrometheus: Prometheus could not be asked (fail safe).
	BlockedPrometheus = "PrometheusUnavailable"
	// BlockedCordoned: a selected node is cordoned by somebody else, or a
	// pool is being upgraded (--cordoned-by-others=wait, --pool-label).
	BlockedCordoned = "NodeCordoned"
)

// BlockedReasons lists every blocked reason.
var BlockedReasons = []string{BlockedNotReady, BlockedPaused, BlockedWindow, BlockedPods, BlockedAlerts, BlockedPrometheus, BlockedCordoned,
	BlockedDomainBudget, BlockedPoolBudget}

// Admission is the result of Admit.
type Admission struct {
	// Take names the nodes to take now, in order.
	Take []string
	// Waiting names the candidates that stay queued, in order.
	Waiting []string
	// Blocks are the cluster-wide gates that keep every node from being
	// taken (sorted by reason); they are reported only while a node
	// waits.
	Blocks []Block
	// NodeBlocks are the waiting nodes held back by a gate of their own.
	NodeBlocks map[string]Block
	// Until is the earliest time a block may lift by itself (the window
	// opens, a blocker is checked again); zero: none.
	Until time.Time
}

// Blocked reports whether a cluster-wide gate blocks admission.
func (ad Admission) Blocked() bool { return len(ad.Blocks) > 0 }

// BlockedMessage explains the cluster-wide blocks ("" when none).
func (ad Admission) BlockedMessage() string {
	var msgs []string
	for _, b := range ad.Blocks {
		msgs = append(msgs, b.Message)
	}
	return strings.Join(msgs, "; ")
}

// WindowBlock returns the block of the reboot window at now, or nil when it
// is open.
func WindowBlock(cfg *Config, now time.Time) *Block {
	if cfg.Window.Contains(now) {
		return nil
	}
	open, _ := cfg.Window.Next(now)
	b := &Block{Reason: BlockedWindow, Until: open,
		Message: fmt.Sprintf("outside the reboot window (%s)", cfg.Window)}
	if !open.IsZero() {
		b.Message += "; it opens at " + contract.FormatTime(open)
	}
	return b
}

// Admit decides which candidates to take: the oldest requests first (ties
// broken by name), never more than MaxConcurrent nodes out nor more than
// any budget below it allows (control plane, per topology domain, one
// domain at a time, per pool: a node held back by one lets the next go),
// and none while
// a cluster-wide gate is closed: outside the reboot window, while a
// selected node that is not being rebooted is NotReady (unless
// AllowUnhealthyCluster), or for the cluster's Blocks. A candidate with a
// Block of its own stays waiting and lets the next one go.
func Admit(cands []Candidate, cl Cluster, cfg *Config, now time.Time) Admission {
	sorted := queueOrder(cands)
	var ad Admission
	if len(sorted) > 0 {
		ad.Blocks = clusterBlocks(cl, cfg, now)
	}
	for _, b := range ad.Blocks {
		ad.waitUntil(b.Until)
	}
	free := cfg.MaxConcurrent - cl.Out
	if len(ad.Blocks) > 0 {
		free = 0
	}
	bud := newBudgets(cl, cfg)
	for _, c := range sorted {
		if free <= 0 {
			ad.Waiting = append(ad.Waiting, c.Name)
			continue
		}
		fits, block := bud.check(c)
		if block == nil && fits {
			block = c.Block
		}
		switch {
		case block != nil:
			if ad.NodeBlocks == nil {
				ad.NodeBlocks = map[string]Block{}
			}
			ad.NodeBlocks[c.Name] = *block
			ad.waitUntil(block.Until)
			ad.Waiting = append(ad.Waiting, c.Name)
		case !fits:
			// Waits for the control-plane slot; the next may go.
			ad.Waiting = append(ad.Waiting, c.Name)
		default:
			ad.Take = append(ad.Take, c.Name)
			free--
			bud.take(c)
		}
	}
	return ad
}

// queueOrder sorts the candidates oldest request first, then by name.
func queueOrder(cands []Candidate) []Candidate {
	sorted := append([]Candidate(nil), cands...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if !a.RequestTime.Equal(b.RequestTime) {
			return a.RequestTime.Before(b.RequestTime)
		}
		return a.Name < b.Name
	})
	return sorted
}

// clusterBlocks are the closed gates that keep every waiting node waiting:
// the reboot window, NotReady nodes, nodes cordoned by somebody else (with
// --cordoned-by-others=wait), pools being upgraded, and the cluster-wide
// gates the controller found closed; sorted by reason.
func clusterBlocks(cl Cluster, cfg *Config, now time.Time) []Block {
	var blocks []Block
	if b := WindowBlock(cfg, now); b != nil {
		blocks = append(blocks, *b)
	}
	if len(cl.NotReady) > 0 && !cfg.AllowUnhealthyCluster {
		nr := append([]string(nil), cl.NotReady...)
		sort.Strings(nr)
		blocks = append(blocks, Block{Reason: BlockedNotReady,
			Message: "not taking nodes while these nodes are NotReady: " + strings.Join(nr, ", ")})
	}
	if cfg.WaitForOthersCordons && len(cl.CordonedByOthers) > 0 {
		blocks = append(blocks, Block{Reason: BlockedCordoned,
			Message: "not taking nodes while these nodes are cordoned by somebody else (--cordoned-by-others=wait): " + strings.Join(cl.CordonedByOthers, ", ")})
	}
	if cfg.PoolLabel != "" && len(cl.PoolsInUpgrade) > 0 {
		blocks = append(blocks, Block{Reason: BlockedCordoned,
			Message: fmt.Sprintf("not taking nodes while these pools are being upgraded (their nodes disagree on %s or the kubelet version): %s",
				cfg.PoolVersionLabel, strings.Join(cl.PoolsInUpgrade, ", "))})
	}
	blocks = append(blocks, cl.Blocks...)
	sort.SliceStable(blocks, func(i, j int) bool { return blocks[i].Reason < blocks[j].Reason })
	return blocks
}

// waitUntil moves the admission's next look (Until) to t, if t is earlier.
func (ad *Admission) waitUntil(t time.Time) {
	if !t.IsZero() && (ad.Until.IsZero() || t.Before(ad.Until)) {
		ad.Until = t
	}
}
