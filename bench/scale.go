package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/harness"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// 7. Scale of the controller: cfg.scaleNodes static Nodes, written once
// (kwok and the kube-controller-manager, with its node-lifecycle
// controller, are stopped: nothing heartbeats, the control plane is idle),
// the controller started on them and measured idle, then cfg.scaleConditions
// RebootRequired conditions set at once.
func benchScale(ctx context.Context, cfg config, res *Results) (err error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	k := cfg.scaleConcurrent
	// No controller yet (it starts on the nodes written); stop's check of
	// --max-concurrent is made below.
	probe, err := freeAddr()
	if err != nil {
		return err
	}
	h, rec, stop, err := setup(ctx, cfg, harness.Config{Cluster: framework.Options{Nodes: 0},
		ControllerArgs: controllerArgs(k, "--health-probe-bind-address="+probe)})
	if err != nil {
		return err
	}
	defer stop(&err)
	h.Cluster.ControllerManager.Stop(10 * time.Second)
	h.Cluster.Kwok.Stop(10 * time.Second)
	fast := rest.CopyConfig(h.Cluster.AdminConfig)
	fast.QPS, fast.Burst = 5000, 10000
	client, err := kubernetes.NewForConfig(fast)
	if err != nil {
		return err
	}
	names := make([]string, cfg.scaleNodes)
	for i := range names {
		names[i] = "static-" + strconv.Itoa(i)
	}
	created := time.Now()
	if err := parallel(ctx, names, func(ctx context.Context, name string) error {
		_, err := client.CoreV1().Nodes().Create(ctx, staticNode(name), metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("creating static nodes: %w", err)
	}
	for _, name := range names {
		if _, err := rec.wait(ctx, name, framework.NodeReady); err != nil {
			return err
		}
	}
	res.value("scale", fmt.Sprintf("%d static nodes written", cfg.scaleNodes), time.Since(created).Seconds(), "s", "", "one create each, status included; no kwok, no node-lifecycle controller")

	ctrl, err := h.StartController()
	if err != nil {
		return err
	}
	defer func() {
		if e := rec.checkOut(k); e != nil {
			err = errors.Join(err, e)
		}
	}()
	if _, err := h.LeaderProcess(ctx); err != nil {
		return err
	}
	// The window starts once the leader's caches are synced (its /readyz).
	if err := waitReady(ctx, "http://"+probe+"/readyz"); err != nil {
		return err
	}
	idleStart := time.Now()
	a, err := sampleProc(ctrl.Pid())
	if err != nil {
		return err
	}
	select {
	case <-time.After(cfg.idleWindow): // the measurement window itself
	case <-ctx.Done():
		return ctx.Err()
	}
	b, err := sampleProc(ctrl.Pid())
	if err != nil {
		return err
	}
	idleEnd := time.Now()
	entries, err := readAudit(h.Cluster.AuditLog(), idleStart, idleEnd)
	if err != nil {
		return err
	}
	var idleRequests []auditEntry
	for _, e := range entries {
		if e.client() == "controller" && e.ObjectRef.Resource != "leases" {
			idleRequests = append(idleRequests, e)
		}
	}
	fp := footprint(a, b)
	note := fmt.Sprintf("%d static nodes, %s window", cfg.scaleNodes, cfg.idleWindow)
	res.value("scale", "controller RSS, idle", fp.RSSMiB, "MiB", "< 100 MiB", fmt.Sprintf("%s; anonymous %.1f MiB, mapped binary %.1f MiB", note, fp.AnonMiB, fp.FileMiB))
	res.value("scale", "controller CPU, idle", fp.CPUPercent, "% of a core", "", note)
	res.value("scale", "controller requests, idle", float64(len(idleRequests)), "requests", "0", note+"; leader-election Lease renewals excluded")
	res.Details["scale_idle_requests"] = countBy(idleRequests, func(e auditEntry) string { return e.Verb + " " + e.resource() })

	queued, err := watchQueued(ctx, h.Cluster.Client)
	if err != nil {
		return err
	}
	asked := names[:cfg.scaleConditions]
	t0 := time.Now()
	if err := parallel(ctx, asked, func(ctx context.Context, name string) error {
		return setRebootRequired(ctx, client, name)
	}); err != nil {
		return fmt.Errorf("setting conditions: %w", err)
	}
	written := time.Since(t0)
	allQueued, err := queued.waitAll(ctx, asked, rec)
	if err != nil {
		return err
	}
	var first time.Time
	for _, tr := range rec.since(t0) {
		if tr.kind == "taken" {
			first = tr.at
			break
		}
	}
	if first.IsZero() {
		return fmt.Errorf("no node taken after the conditions were set")
	}
	c, err := sampleProc(ctrl.Pid())
	if err != nil {
		return err
	}
	note = fmt.Sprintf("%d conditions set at once on %d static nodes, --max-concurrent %d", cfg.scaleConditions, cfg.scaleNodes, k)
	res.value("scale", "writing the conditions (all answered)", written.Seconds(), "s", "", note)
	res.value("scale", "conditions set → first node taken", first.Sub(t0).Seconds(), "s", "< 1 s", note+"; from the first write")
	res.value("scale", "conditions set → every node taken or RebootQueued", allQueued.Sub(t0).Seconds(), "s", "", note+"; RebootQueued events as a watcher sees them")
	res.value("scale", "controller RSS after the burst", c.rssMiB, "MiB", "< 100 MiB", note)
	return nil
}

// staticNode is a Ready node that nothing updates: no kubelet, no lease.
func staticNode(name string) *corev1.Node {
	now := metav1.Now()
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now},
				{Type: contract.DefaultConditionType, Status: corev1.ConditionFalse, Reason: contract.ReasonRebootNotRequired, LastHeartbeatTime: now, LastTransitionTime: now},
			},
			NodeInfo: corev1.NodeSystemInfo{BootID: rand.String(16), KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64"},
		},
	}
}

// setRebootRequired sets the node's RebootRequired condition True, as its
// detector would.
func setRebootRequired(ctx context.Context, client kubernetes.Interface, name string) error {
	now := time.Now().UTC().Format(time.RFC3339)
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":"True","reason":%q,"message":"/var/run/reboot-required exists","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`,
		contract.DefaultConditionType, contract.ReasonRebootRequired, now, now)
	_, err := client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
	return err
}

// parallel calls f for every name, 32 at a time; the first error stops it.
func parallel(ctx context.Context, names []string, f func(context.Context, string) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan string)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				if err := f(ctx, name); err != nil {
					cancel(fmt.Errorf("%s: %w", name, err))
				}
			}
		}()
	}
	for _, name := range names {
		select {
		case work <- name:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// queuedWatch records the nodes that got a RebootQueued event.
type queuedWatch struct {
	mu      sync.Mutex
	nodes   map[string]bool
	changed chan struct{}
}

func watchQueued(ctx context.Context, client kubernetes.Interface) (*queuedWatch, error) {
	q := &queuedWatch{nodes: map[string]bool{}, changed: make(chan struct{})}
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("reason", contract.ReasonRebootQueued).String()
	}))
	inf := f.Core().V1().Events().Informer()
	add := func(obj any) {
		if e, ok := obj.(*corev1.Event); ok && e.InvolvedObject.Kind == "Node" {
			q.mu.Lock()
			q.nodes[e.InvolvedObject.Name] = true
			close(q.changed)
			q.changed = make(chan struct{})
			q.mu.Unlock()
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: add, UpdateFunc: func(_, o any) { add(o) }}); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, ctx.Err()
	}
	return q, nil
}

// waitAll returns when every node is out (taken) or has its RebootQueued
// event, with the time of the last of them.
func (q *queuedWatch) waitAll(ctx context.Context, names []string, rec *recorder) (time.Time, error) {
	for {
		q.mu.Lock()
		ch := q.changed
		missing := 0
		for _, n := range names {
			if !q.nodes[n] {
				missing++
			}
		}
		q.mu.Unlock()
		changed := rec.changes()
		notOut := 0
		for _, n := range names {
			if !q.has(n) && !rec.isOut(n) {
				notOut++
			}
		}
		if notOut == 0 {
			return time.Now(), nil
		}
		select {
		case <-ch:
		case <-changed:
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%d nodes neither taken nor queued (%d without a RebootQueued event): %w", notOut, missing, ctx.Err())
		}
	}
}

func (q *queuedWatch) has(node string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.nodes[node]
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady asks url every 100 ms until it answers 200 or ctx ends.
func waitReady(ctx context.Context, url string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", url, ctx.Err())
		}
	}
}
