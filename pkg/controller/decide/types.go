package decide

// The types of a decision: its input (Input, Config, DrainStatus) and its
// output (Action, Kind, Patch, Block).

import (
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/gates/window"
)

// DrainFailurePolicy is what happens to a node whose drain did not finish
// within the drain timeout (--on-drain-failure).
type DrainFailurePolicy string

// The drain failure policies.
const (
	// DrainFailureUncordon gives the node back: uncordon it (if we cordoned
	// it), clear its state and do not take it again before a backoff.
	DrainFailureUncordon DrainFailurePolicy = "uncordon"
	// DrainFailureHold marks the node Failed; it stays cordoned and keeps its
	// slot until an operator clears it.
	DrainFailureHold DrainFailurePolicy = "hold"
	// DrainFailureReboot authorizes the reboot anyway (kured's
	// --force-reboot).
	DrainFailureReboot DrainFailurePolicy = "reboot"
)

// Config is the part of the controller's configuration that decisions depend
// on.
type Config struct {
	// Conditions are the node condition types that, with status True, ask
	// for a reboot.
	Conditions []string
	// ConditionMinAge is how long a condition must have been True.
	ConditionMinAge time.Duration
	// Selector restricts the nodes that are rebooted; nil selects all.
	Selector labels.Selector
	// MaxConcurrent is the most nodes out (with a state) at any moment.
	MaxConcurrent int
	// MaxConcurrentControlPlane is the most control-plane nodes (see
	// IsControlPlane) out at any moment, within MaxConcurrent: one by
	// default, so that an etcd member is never down with another.
	MaxConcurrentControlPlane int
	// TopologyKey is the node label whose value is the node's topology
	// domain (DefaultTopologyKey); nodes without it form the domain "".
	TopologyKey string
	// MaxConcurrentPerDomain is the most nodes out per topology domain,
	// within MaxConcurrent; 0: no cap per domain.
	MaxConcurrentPerDomain int
	// OneDomainAtATime takes a node only while no node of another
	// domain is out: a domain with nodes out is finished first.
	OneDomainAtATime bool
	// PoolBudgets cap the nodes out per pool, each on its own, all within
	// MaxConcurrent.
	PoolBudgets []PoolBudget
	// DrainTimeout bounds a drain, counted from state-since.
	DrainTimeout time.Duration
	// OnDrainFailure is the drain failure policy.
	OnDrainFailure DrainFailurePolicy
	// DrainFailureBackoff is how long a node whose drain failed (policy
	// uncordon) is left alone.
	DrainFailureBackoff time.Duration
	// RebootTimeout bounds the wait for a new boot ID and Ready, counted
	// from state-since.
	RebootTimeout time.Duration
	// PostRebootSoak is how long a rebooted node must stay Ready before it
	// is uncordoned.
	PostRebootSoak time.Duration
	// MinRebootInterval is the least time between two reboots of a node.
	MinRebootInterval time.Duration
	// AllowUnhealthyCluster lets nodes be taken while other selected nodes
	// are NotReady.
	AllowUnhealthyCluster bool
	// WaitForOthersCordons takes no node while a selected node is cordoned
	// by somebody else (--cordoned-by-others=wait).
	WaitForOthersCordons bool
	// PoolLabel and PoolVersionLabel, when PoolLabel is set, take no node
	// while a pool's nodes disagree on the version (--pool-label).
	PoolLabel, PoolVersionLabel string
	// Window is when nodes may be taken; nil: always. A node taken inside
	// the window finishes after it closes.
	Window *window.Window
	// DrainDelay is the wait between the cordon and the start of the
	// drain (within DrainTimeout, which counts from the cordon).
	DrainDelay time.Duration
	// PreRebootLabels are set on a node when it is taken and restored to
	// their earlier values when it leaves the pipeline; PostRebootLabels
	// are set when its reboot completes (and are off the node while it is
	// in the pipeline).
	PreRebootLabels, PostRebootLabels map[string]string
	// ScaleDownProtection puts the Cluster Autoscaler's scale-down-disabled
	// annotation on a node from its take until ScaleDownProtectionAfter
	// after it leaves the pipeline (only if it was not there).
	ScaleDownProtection      bool
	ScaleDownProtectionAfter time.Duration
	// KarpenterProtection puts Karpenter's do-not-disrupt annotation on a
	// node from its take until it leaves the pipeline, only if the node
	// does not carry it (AnnotationDoNotDisruptByUs records that it is
	// ours).
	KarpenterProtection bool
	// Release is the release gate a rebooted node must pass before its
	// slot is given back (release.go).
	Release ReleaseGate
	// LifecycleConditions writes the KEP-5683 lifecycle conditions
	// (MaintenancePlanned, DrainInProgress, Drained,
	// MaintenanceInProgress) as nodes move through the pipeline (see
	// Lifecycle).
	LifecycleConditions bool
}

// Block says why a reboot may not go ahead now (a gate is closed), and when
// to look again.
type Block struct {
	// Reason is one of BlockedReasons (the label of
	// nodereboot_reboot_blocked).
	Reason string
	// Message explains it for people (the RebootBlocked event).
	Message string
	// Until is when to look again; zero: at the next change.
	Until time.Time
}

func (b Block) String() string { return b.Reason + ": " + b.Message }

// DrainStatus is the outcome of a drain pass (drain.Drainer.Pass), as the
// decision reads it.
type DrainStatus struct {
	// Pending is the number of pods that must still leave the node (being
	// evicted, blocked, or terminating).
	Pending int
	// Evicted is the number of evictions accepted by the pass.
	Evicted int
	// Pods describes up to drain.Options.MaxListed pending pods and why
	// each is still there, e.g. "default/web-1 (blocked by
	// PodDisruptionBudget default/web)"; blocked pods come first.
	Pods []string
	// RetryAt is the earliest time a refused eviction is due again; zero
	// when none is.
	RetryAt time.Time
}

// Kind is the kind of an Action.
type Kind string

// The kinds of actions.
const (
	// Nothing: no step for this node; no requeue.
	Nothing Kind = "Nothing"
	// Wait: nothing to do now; look again at Until (if not zero) or at the
	// next change of the node.
	Wait Kind = "Wait"
	// Queue: the node needs a reboot and may start; admission (Admit)
	// decides when. RequestTime orders the queue.
	Queue Kind = "Queue"
	// Cordon: a node in the pipeline lost its cordon; cordon it again.
	Cordon Kind = "Cordon"
	// Drain: run a drain pass, then decide again with its DrainStatus.
	Drain Kind = "Drain"
	// Authorize: the drain is over; authorize the reboot of the current
	// boot ID.
	Authorize Kind = "Authorize"
	// MarkRebooted: a new boot ID is up and Ready; start the soak.
	MarkRebooted Kind = "MarkRebooted"
	// Finish: the reboot is complete; uncordon (if ours) and clear.
	Finish Kind = "Finish"
	// Fail: stop the pipeline for this node (state Failed, keeps its slot
	// and its cordon).
	Fail Kind = "Fail"
	// AbandonDrain: the drain failed with policy uncordon; give the node
	// back and set not-before.
	AbandonDrain Kind = "AbandonDrain"
	// Release: an operator removed the state annotation; uncordon (if ours)
	// and remove the controller's remaining annotations.
	Release Kind = "Release"
	// Reset: invalid annotations; write the safe values in Patch.
	Reset Kind = "ResetGarbage"
	// Unprotect: the scale-down protection of an idle node is over;
	// remove it.
	Unprotect Kind = "EndScaleDownProtection"
)

// Patch is a change to a node (contract's one patch renderer). A decision
// leaves its ResourceVersion empty; the controller guards the write with
// the version the decision was made on.
type Patch = contract.Patch

// Action is the next step for one node.
type Action struct {
	Kind Kind
	// Reason is the event reason that goes with the action (for Fail also
	// the state-reason; for Wait, a warning to announce once, if any).
	Reason string
	// Message explains the action for people (events, logs).
	Message string
	// Until is when to look at the node again (Wait, Queue); zero: only on
	// a change of the node.
	Until time.Time
	// RequestTime is when the reboot was requested (Queue).
	RequestTime time.Time
	// Elapsed is the time spent in the state being left (Authorize: the
	// drain; MarkRebooted: the reboot).
	Elapsed time.Duration
	// Patch is the change to write, for every kind that writes.
	Patch *Patch
}

func (a Action) String() string {
	var b strings.Builder
	b.WriteString(string(a.Kind))
	if a.Reason != "" {
		fmt.Fprintf(&b, " (%s)", a.Reason)
	}
	if a.Message != "" {
		fmt.Fprintf(&b, ": %s", a.Message)
	}
	if !a.Until.IsZero() {
		fmt.Fprintf(&b, " until %s", contract.FormatTime(a.Until))
	}
	return b.String()
}

// Input is everything Node decides from.
type Input struct {
	Node   *v1.Node
	Config *Config
	Now    time.Time
	// Drain is the result of a drain pass that just ran on this node; nil
	// when none ran.
	Drain *DrainStatus
	// Gate, when not nil, is a gate closed for this node's reboot; it is
	// checked again before the authorization (blocking pods, alerts), and
	// keeps a drained node from being authorized.
	Gate *Block
	// Slot is the node's entry in the slot record; nil: it holds none. A
	// node with controller annotations but no slot was not put out by the
	// controller: its annotations are removed, never acted on.
	Slot *Slot
	// Pods are the DaemonSet pods bound to a rebooted node (DaemonSetPods),
	// for the release gate; PodsKnown is false until the node's pod watch
	// has listed them.
	Pods      []PodReadiness
	PodsKnown bool
}

// Reasons for Wait actions that are not in the contract. They are event
// reasons as well.
const (
	// WaitNoBootID: the node reports no boot ID, so no reboot can be
	// authorized (event reason RebootBlocked).
	WaitNoBootID = contract.ReasonRebootBlocked
)
