package observer

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nodereboot/nodereboot/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// The node contract, spelled out again (see the package comment).
const (
	annState        = "nodereboot.io/state"
	annStateReason  = "nodereboot.io/state-reason"
	annCordonedByUs = "nodereboot.io/cordoned-by-us"
	annAuthorized   = "nodereboot.io/reboot-authorized"
	annRebooting    = "nodereboot.io/rebooting"
	annNotBefore    = "nodereboot.io/not-before"
	annPrefix       = "nodereboot.io/"
	// annPoweredOff is the node simulator's mark of a host that is down.
	annPoweredOff = "sim.nodereboot.io/powered-off"

	stateDraining   = "Draining"
	stateAuthorized = "Authorized"
	stateRebooted   = "Rebooted"
	stateFailed     = "Failed"

	controllerComponent = "nodereboot-controller"
	detectorComponent   = "nodereboot-detector"
	// ControllerUser is the controller's service account as the API server
	// names it (deploy/rbac, e2e/harness).
	ControllerUser = "system:serviceaccount:nodereboot-system:nodereboot-controller"

	mirrorAnnotation = "kubernetes.io/config.mirror"
)

var validStates = map[string]bool{stateDraining: true, stateAuthorized: true, stateRebooted: true, stateFailed: true}

// AuditPolicy is an API server audit policy (framework.Options.AuditPolicy)
// that logs every request of nodereboot's service accounts once, at
// Metadata level, for the I3 check.
const AuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts:nodereboot-system"]
- level: None
`

// Config configures an Observer.
type Config struct {
	// Client reads the cluster (an admin client).
	Client kubernetes.Interface
	// MaxConcurrent is the controller's --max-concurrent.
	MaxConcurrent int
	// ForceReboot is the controller's --on-drain-failure=reboot: a reboot of
	// a node that still has pods is then allowed (after a DrainFailed).
	ForceReboot bool
	// AuditLog is the API server's audit log written with AuditPolicy; empty
	// skips I3.
	AuditLog string
	// Logf receives progress lines (default none).
	Logf func(format string, args ...any)
}

// Violation is one broken invariant.
type Violation struct {
	Invariant string    `json:"invariant"`
	Node      string    `json:"node,omitempty"`
	At        time.Time `json:"at"`
	Message   string    `json:"message"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s %s: %s", v.At.Format("15:04:05.000"), v.Invariant, v.Node, v.Message)
}

// version is one observed version of a Node.
type version struct {
	rv            uint64
	at            time.Time
	ann           map[string]string // nodereboot.io/* and the simulator's mark
	unschedulable bool
	bootID        string
	ready         bool
	deleted       bool
	// owners names, for the pipeline annotations (ownedKeys), the field
	// manager that wrote them (from managedFields); nil when unknown.
	owners map[string]string
	// afterGap: the first version seen after the node watch broke (a
	// relist): versions between the previous one and this one may have
	// been missed, so the node's state in between is not known.
	afterGap bool
}

func (v version) state() (string, bool) {
	s, ok := v.ann[annState]
	return s, ok
}

// ours: between our cordon and our uncordon. Annotations written by
// somebody else than the controller (an attacker with node patch rights)
// do not put a node out: the controller must not act on them, which I2
// and I5 check.
func (v version) ours() bool {
	if v.deleted {
		return false
	}
	if _, ok := v.ann[annCordonedByUs]; ok && !v.forged(annCordonedByUs) {
		return true
	}
	s, _ := v.state()
	return validStates[s] && !v.forged(annState)
}

// forged reports whether the annotation was last written by a field
// manager other than the controller's (unknown owners are the controller's).
func (v version) forged(key string) bool {
	m, ok := v.owners[key]
	return ok && m != controllerComponent
}

// ownerPrefix marks the synthetic annotations in which recordOwners keeps,
// past the informer's transform, who wrote each pipeline annotation.
const ownerPrefix = "owner.observer.e2e.nodereboot.io/"

// ownedKeys are the annotations whose writer the observer tracks.
var ownedKeys = []string{annState, annCordonedByUs, annAuthorized}

// recordOwners copies, for each of ownedKeys, the field manager that owns
// it in the node's managedFields into a synthetic annotation, before the
// managed fields are dropped.
func recordOwners(n *corev1.Node) {
	for _, mf := range n.ManagedFields {
		if mf.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Metadata struct {
				Annotations map[string]json.RawMessage `json:"f:annotations"`
			} `json:"f:metadata"`
		}
		if json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields) != nil {
			continue
		}
		for _, k := range ownedKeys {
			if _, ok := fields.Metadata.Annotations["f:"+k]; ok {
				if n.Annotations == nil {
					n.Annotations = map[string]string{}
				}
				n.Annotations[ownerPrefix+k] = mf.Manager
			}
		}
	}
}

// pod is what the observer keeps of a pod that was bound to a node.
type pod struct {
	key, node   string
	mustEvict   bool   // not a DaemonSet pod, not a mirror pod
	firstRV     uint64 // resourceVersion when first seen bound to node
	goneRV      uint64 // deleted, or terminal; 0: not gone
	goneUnknown bool   // deleted while the watch was down: when is unknown
}

// event is one Event object about a node.
type event struct {
	node, component, reason, message, typ string
	count                                 int32
}

// Observer watches a cluster and records invariant violations; create it
// with Start.
type Observer struct {
	cfg Config

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every observed change
	nodes      map[string][]version
	pods       map[types.UID]*pod
	events     map[types.UID]event
	hosts      map[string]string // node → reboot log
	logSizes   map[string]int64
	reboots    map[string][]Reboot
	checked    map[string]bool // reboot key → its checks ran
	violations []Violation
	out        map[string]bool
	maxOut     int
	outLog     []string
	notes      []string // observations that are not violations
	progress   int      // state changes seen
	// gap names the nodes whose next version follows a relist of the nodes.
	gap map[string]bool
	// relists counts the node informer's lists after its first.
	relists int
	// budgetDips are the moments a PodDisruptionBudget had fewer healthy
	// pods than it wants.
	budgetDips []string
	// budgetMet names the budgets that had their minimum once.
	budgetMet map[string]bool

	poke   chan struct{}
	done   chan struct{}
	stop   context.CancelFunc
	podInf cache.SharedIndexInformer
}

func (o *Observer) logf(format string, args ...any) {
	if o.cfg.Logf != nil {
		o.cfg.Logf(format, args...)
	}
}

// Start starts watching. Stop (or ctx's end) stops it.
func Start(ctx context.Context, cfg Config) (*Observer, error) {
	if cfg.MaxConcurrent < 1 {
		return nil, fmt.Errorf("observer: MaxConcurrent must be at least 1")
	}
	ctx, cancel := context.WithCancel(ctx)
	o := &Observer{
		cfg: cfg, changed: make(chan struct{}),
		nodes: map[string][]version{}, pods: map[types.UID]*pod{}, events: map[types.UID]event{},
		hosts: map[string]string{}, logSizes: map[string]int64{}, reboots: map[string][]Reboot{},
		checked: map[string]bool{}, out: map[string]bool{}, gap: map[string]bool{}, budgetMet: map[string]bool{},
		poke: make(chan struct{}, 1), done: make(chan struct{}), stop: cancel,
	}
	strip := func(obj any) (any, error) {
		if n, ok := obj.(*corev1.Node); ok {
			recordOwners(n)
		}
		if m, ok := obj.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		if n, ok := obj.(*corev1.Node); ok {
			n.Status.Images = nil
		}
		return obj, nil
	}
	factory := informers.NewSharedInformerFactory(cfg.Client, 0)
	nodeInf := cache.NewSharedIndexInformer(o.nodeListWatch(), &corev1.Node{}, 0, cache.Indexers{})
	podInf := factory.Core().V1().Pods().Informer()
	eventFactory := informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("involvedObject.kind", "Node").String()
		}))
	eventInf := eventFactory.Core().V1().Events().Informer()
	pdbInf := factory.Policy().V1().PodDisruptionBudgets().Informer()
	for _, inf := range []cache.SharedIndexInformer{nodeInf, podInf, eventInf, pdbInf} {
		if err := inf.SetTransform(strip); err != nil {
			cancel()
			return nil, err
		}
	}
	o.podInf = podInf
	if _, err := nodeInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.onNode(obj, false) },
		UpdateFunc: func(_, obj any) { o.onNode(obj, false) },
		DeleteFunc: func(obj any) { o.onNode(obj, true) },
	}); err != nil {
		cancel()
		return nil, err
	}
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.onPod(obj, false) },
		UpdateFunc: func(_, obj any) { o.onPod(obj, false) },
		DeleteFunc: func(obj any) { o.onPod(obj, true) },
	}); err != nil {
		cancel()
		return nil, err
	}
	if _, err := pdbInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    o.onPDB,
		UpdateFunc: func(_, obj any) { o.onPDB(obj) },
	}); err != nil {
		cancel()
		return nil, err
	}
	if _, err := eventInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    o.onEvent,
		UpdateFunc: func(_, obj any) { o.onEvent(obj) },
	}); err != nil {
		cancel()
		return nil, err
	}
	go nodeInf.RunWithContext(ctx)
	factory.Start(ctx.Done())
	eventFactory.Start(ctx.Done())
	for _, inf := range []cache.SharedIndexInformer{nodeInf, podInf, eventInf, pdbInf} {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			cancel()
			factory.Shutdown()
			eventFactory.Shutdown()
			return nil, fmt.Errorf("observer: caches not synced: %w", ctx.Err())
		}
	}
	go func() {
		defer close(o.done)
		defer factory.Shutdown()
		defer eventFactory.Shutdown()
		for {
			select {
			case <-ctx.Done():
				return
			case <-o.poke:
				o.readLogs()
			}
		}
	}()
	return o, nil
}

// Stop stops watching.
func (o *Observer) Stop() {
	o.stop()
	<-o.done
}

// AddHost tells the observer where a node's reboot log is (nodesim's
// Node.LogFile).
func (o *Observer) AddHost(node, rebootLog string) {
	o.mu.Lock()
	o.hosts[node] = rebootLog
	o.mu.Unlock()
	o.wake()
}

func (o *Observer) wake() {
	select {
	case o.poke <- struct{}{}:
	default:
	}
}

// broadcast wakes WaitFor; o.mu is held.
func (o *Observer) broadcast() {
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *Observer) violate(inv, node, format string, args ...any) {
	v := Violation{Invariant: inv, Node: node, At: time.Now(), Message: fmt.Sprintf(format, args...)}
	o.violations = append(o.violations, v)
	o.logf("INVARIANT VIOLATED: %s", v)
}

func (o *Observer) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	o.notes = append(o.notes, s)
	o.logf("observer: %s", s)
}

func parseRV(s string) uint64 {
	rv, _ := strconv.ParseUint(s, 10, 64)
	return rv
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (o *Observer) onNode(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	v := version{rv: parseRV(n.ResourceVersion), at: time.Now(), ann: map[string]string{},
		unschedulable: n.Spec.Unschedulable, bootID: n.Status.NodeInfo.BootID, ready: nodeReady(n), deleted: deleted}
	for k, val := range n.Annotations {
		if owned, ok := strings.CutPrefix(k, ownerPrefix); ok {
			if v.owners == nil {
				v.owners = map[string]string{}
			}
			v.owners[owned] = val
		} else if strings.HasPrefix(k, annPrefix) || k == annPoweredOff {
			v.ann[k] = val
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	hist := o.nodes[n.Name]
	gap := o.gap[n.Name]
	delete(o.gap, n.Name)
	if len(hist) > 0 && !deleted && hist[len(hist)-1].rv == v.rv {
		return // unchanged (a relist): nothing was missed
	}
	v.afterGap = gap && len(hist) > 0
	if len(hist) == 0 || hist[len(hist)-1].ann[annState] != v.ann[annState] || deleted {
		o.progress++
	}
	o.nodes[n.Name] = append(hist, v)
	o.checkOut(n.Name, v)
	o.broadcast()
	o.wake()
}

// nodeListWatch lists and watches the nodes for the observer's informer and
// marks a gap for every node whenever the informer lists again. A relist
// means the watch could not resume where it stopped (its resource version
// expired, or the API server came back with a fresh watch cache), so the
// versions in between are lost; client-go relists after an expired watch
// without calling its watch error handler, so the list itself is the only
// exact sign. The informer's first list is no gap: there is no history yet.
func (o *Observer) nodeListWatch() *cache.ListWatch {
	return framework.RelistingNodeListWatch(o.cfg.Client, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.relists++
		for name := range o.nodes {
			o.gap[name] = true
		}
	})
}

// checkOut is I1, at every node change, as the watch delivers them. A
// relist delivers the nodes in no particular order, so what it finds here is
// provisional: checkOutReplay decides, in resource-version order.
func (o *Observer) checkOut(node string, v version) {
	was := o.out[node]
	now := v.ours()
	if now {
		o.out[node] = true
	} else {
		delete(o.out, node)
	}
	if was == now {
		return
	}
	var names []string
	for name := range o.out {
		names = append(names, name)
	}
	sort.Strings(names)
	o.outLog = append(o.outLog, fmt.Sprintf("%s rv=%d %s ours=%v out=%v", v.at.Format("15:04:05.000"), v.rv, node, now, names))
	if len(names) > o.maxOut {
		o.maxOut = len(names)
	}
	if now && len(names) > o.cfg.MaxConcurrent {
		o.logf("observer: %d nodes out at once as delivered (max-concurrent %d): %v; checked again in resource-version order at the end",
			len(names), o.cfg.MaxConcurrent, names)
	}
}

// checkOutReplay is I1: it replays every observed node version in
// resource-version order (one sequence for all objects of the cluster) and
// counts the nodes out at each. Where a node watch broke, the node counts as
// out between its two versions around the gap only if it was out at both:
// no violation is claimed from versions the watch may have skipped. o.mu is
// held.
func (o *Observer) checkOutReplay() {
	type point struct {
		rv   uint64
		node string
		out  bool
	}
	var pts []point
	for name, hist := range o.nodes {
		for i, v := range hist {
			if v.afterGap && i > 0 {
				pts = append(pts, point{hist[i-1].rv + 1, name, hist[i-1].ours() && v.ours()})
			}
			pts = append(pts, point{v.rv, name, v.ours()})
		}
	}
	// Same version: leaving first, so that only a certain overlap counts.
	sort.SliceStable(pts, func(i, j int) bool {
		if pts[i].rv != pts[j].rv {
			return pts[i].rv < pts[j].rv
		}
		return !pts[i].out && pts[j].out
	})
	out := map[string]bool{}
	reported := false
	o.maxOut = 0
	for _, p := range pts {
		if p.out {
			out[p.node] = true
		} else {
			delete(out, p.node)
		}
		o.maxOut = max(o.maxOut, len(out))
		if len(out) > o.cfg.MaxConcurrent {
			if !reported {
				var names []string
				for n := range out {
					names = append(names, n)
				}
				sort.Strings(names)
				o.violate("I1", p.node, "%d nodes out at once at resource version %d (max-concurrent %d): %v",
					len(names), p.rv, o.cfg.MaxConcurrent, names)
			}
			reported = true
		} else {
			reported = false
		}
	}
}

func (o *Observer) onPod(obj any, deleted bool) {
	unknown := false
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, unknown = t.Obj, true
	}
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.NodeName == "" {
		return
	}
	rv := parseRV(p.ResourceVersion)
	o.mu.Lock()
	defer o.mu.Unlock()
	rec, seen := o.pods[p.UID]
	if !seen {
		// A pod's resourceVersion at first sight is not later than the
		// moment it was bound (the observer runs before the rollout).
		rec = &pod{key: p.Namespace + "/" + p.Name, node: p.Spec.NodeName, mustEvict: mustEvict(p), firstRV: rv}
		o.pods[p.UID] = rec
	}
	terminal := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	if rec.goneRV == 0 && !rec.goneUnknown {
		switch {
		case deleted && unknown:
			rec.goneUnknown = true
		case deleted, terminal:
			rec.goneRV = rv
		}
	}
	o.broadcast()
}

// mustEvict: a pod the drain must remove (not a DaemonSet's, not a mirror
// pod).
func mustEvict(p *corev1.Pod) bool {
	if _, mirror := p.Annotations[mirrorAnnotation]; mirror {
		return false
	}
	for _, ref := range p.OwnerReferences {
		if ref.Kind == "DaemonSet" && ref.Controller != nil && *ref.Controller {
			return false
		}
	}
	return true
}

// onPDB records a budget whose healthy pods fell below what it wants: with
// evictions only, that never happens through a drain (the eviction API
// refuses the one that would do it).
func (o *Observer) onPDB(obj any) {
	pdb, ok := obj.(*policyv1.PodDisruptionBudget)
	if !ok || pdb.Status.ObservedGeneration != pdb.Generation {
		return
	}
	key := pdb.Namespace + "/" + pdb.Name
	st := pdb.Status
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case st.CurrentHealthy >= st.DesiredHealthy:
		o.budgetMet[key] = true
	case o.budgetMet[key]:
		// Only once met: a budget created before its pods are ready
		// starts below its minimum.
		o.budgetDips = append(o.budgetDips, fmt.Sprintf("%s %s: %d healthy pods, %d wanted (rv %s)",
			time.Now().Format("15:04:05.000"), key, st.CurrentHealthy, st.DesiredHealthy, pdb.ResourceVersion))
	}
}

func (o *Observer) onEvent(obj any) {
	e, ok := obj.(*corev1.Event)
	if !ok || e.InvolvedObject.Kind != "Node" {
		return
	}
	count := e.Count
	if count == 0 {
		count = 1
	}
	o.mu.Lock()
	o.events[e.UID] = event{node: e.InvolvedObject.Name, component: e.Source.Component, reason: e.Reason,
		message: e.Message, typ: e.Type, count: count}
	o.broadcast()
	o.mu.Unlock()
}

// View is a read-only snapshot for WaitFor's conditions.
type View struct{ o *Observer }

// State is the node's nodereboot.io/state ("" when absent) and whether the
// node exists.
func (v View) State(node string) (string, bool) {
	h := v.o.nodes[node]
	if len(h) == 0 || h[len(h)-1].deleted {
		return "", false
	}
	return h[len(h)-1].ann[annState], true
}

// Annotation is one of the node's nodereboot.io/* annotations.
func (v View) Annotation(node, key string) (string, bool) {
	h := v.o.nodes[node]
	if len(h) == 0 {
		return "", false
	}
	val, ok := h[len(h)-1].ann[key]
	return val, ok
}

// Unschedulable reports the node's cordon.
func (v View) Unschedulable(node string) bool {
	h := v.o.nodes[node]
	return len(h) > 0 && h[len(h)-1].unschedulable
}

// Ready reports the node's Ready condition.
func (v View) Ready(node string) bool {
	h := v.o.nodes[node]
	return len(h) > 0 && h[len(h)-1].ready
}

// Reboots is the number of completed reboots of the node so far.
func (v View) Reboots(node string) int { return len(v.o.reboots[node]) }

// Progress counts the changes of nodereboot.io/state seen so far (the
// controller's steps): it grows while the controller moves the rollout on.
func (v View) Progress() int { return v.o.progress }

// Nodes lists the nodes that exist.
func (v View) Nodes() []string {
	var names []string
	for name, h := range v.o.nodes {
		if !h[len(h)-1].deleted {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Events is the number of events (counting repeats) about the node with the
// reason, from the component ("" for any).
func (v View) Events(node, component, reason string) int {
	n := 0
	for _, e := range v.o.events {
		if e.node == node && e.reason == reason && (component == "" || e.component == component) {
			n += int(e.count)
		}
	}
	return n
}

// WaitFor waits until cond holds on the observed state (it is evaluated at
// every change the observer sees), or fails at ctx's end.
func (o *Observer) WaitFor(ctx context.Context, what string, cond func(View) bool) error {
	for {
		o.mu.Lock()
		ok := cond(View{o})
		changed := o.changed
		o.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// Violations returns the violations so far.
func (o *Observer) Violations() []Violation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Violation(nil), o.violations...)
}

// MaxOut is the most nodes seen out at once.
func (o *Observer) MaxOut() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.maxOut
}

// Timeline is the log of nodes going out and back, for failure reports.
func (o *Observer) Timeline() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.outLog, "\n")
}

// History prints every observed version of a node, for failure reports.
func (o *Observer) History(node string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var b strings.Builder
	for _, v := range o.nodes[node] {
		keys := make([]string, 0, len(v.ann))
		for k := range v.ann {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, strings.TrimPrefix(k, annPrefix)+"="+v.ann[k])
		}
		if v.afterGap {
			b.WriteString("(relisted: versions may be missing here)\n")
		}
		fmt.Fprintf(&b, "%s rv=%d boot=%.8s ready=%v unsched=%v deleted=%v %s\n",
			v.at.Format("15:04:05.000"), v.rv, v.bootID, v.ready, v.unschedulable, v.deleted, strings.Join(kv, " "))
	}
	return b.String()
}
