package plugin

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/gates"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

func age(now time.Time, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t))
}

// eventTime is when an event last happened.
func eventTime(e *v1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.FirstTimestamp.Time
	}
}

// eventsNamespace is where the events about Nodes are: a cluster-scoped
// object's events are recorded in namespace default, by the kubelet and by
// nodereboot (docs/node-contract.md). Events that claim to be about a Node
// in any other namespace were not written by nodereboot and are not read.
const eventsNamespace = metav1.NamespaceDefault

// nodeEvents lists the Node events matching the field selector, oldest
// first, from eventsNamespace only.
func nodeEvents(ctx context.Context, client kubernetes.Interface, sel fields.Set) ([]v1.Event, error) {
	sel["involvedObject.kind"] = "Node"
	list, err := client.CoreV1().Events(eventsNamespace).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	// The API server filtered already; filter again for servers (and
	// fakes) that ignore a field.
	var evs []v1.Event
	for _, e := range list.Items {
		if e.Namespace == eventsNamespace && (sel["reason"] == "" || e.Reason == sel["reason"]) && e.InvolvedObject.Kind == "Node" &&
			(sel["involvedObject.name"] == "" || e.InvolvedObject.Name == sel["involvedObject.name"]) {
			evs = append(evs, e)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return eventTime(&evs[i]).Before(eventTime(&evs[j])) })
	return evs, nil
}

// oneLine shows text anybody may have written (an annotation, an event) on
// one line of at most most bytes, with control characters escaped: a value
// with an ESC sequence must not take over the user's terminal.
func oneLine(s string, most int) string {
	return sanitize.Line(s, most)
}

// maxField caps a field of the status table or the history header.
const maxField = 100

// Status prints the pause switch and a table of the nodes: the reboot
// condition and since when, a manual request, the pipeline state and since
// when, and why a waiting node is blocked (its most recent RebootBlocked
// event).
func Status(ctx context.Context, client kubernetes.Interface, o Options, w io.Writer) error {
	now := o.Now()
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	cm, err := client.CoreV1().ConfigMaps(o.Namespace).Get(ctx, contract.ConfigMapName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = nil
	case err != nil:
		return fmt.Errorf("read the pause switch: %w", err)
	}
	evs, err := nodeEvents(ctx, client, fields.Set{"reason": contract.ReasonRebootBlocked})
	if err != nil {
		return err
	}
	blocked := map[string]v1.Event{}
	for i := range evs {
		blocked[evs[i].InvolvedObject.Name] = evs[i]
	}
	var lastBlocked *v1.Event
	if len(evs) > 0 {
		lastBlocked = &evs[len(evs)-1]
	}
	statusHeader(w, now, cm, lastBlocked)
	sort.Slice(nodes.Items, func(i, j int) bool { return nodes.Items[i].Name < nodes.Items[j].Name })
	evicted, err := evictedOn(ctx, client, nodes.Items)
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\t"+strings.ToUpper(o.ConditionType)+"\tSINCE\tSTATE\tSINCE\tEVICTED\tLAST REBOOT\tBLOCKED")
	for i := range nodes.Items {
		fmt.Fprintln(tw, statusRow(&nodes.Items[i], o.ConditionType, blocked, evicted[nodes.Items[i].Name], now))
	}
	return tw.Flush()
}

// statusHeader prints the pause switch and the newest RebootBlocked event.
func statusHeader(w io.Writer, now time.Time, cm *v1.ConfigMap, lastBlocked *v1.Event) {
	if paused, why := gates.Paused(cm); paused {
		if why = oneLine(why, maxField); why == "" {
			why = "no reason given"
		}
		fmt.Fprintf(w, "Paused: yes (%s); no node is taken until `kubectl nodereboot resume`\n", why)
	} else {
		fmt.Fprintln(w, "Paused: no")
	}
	if lastBlocked != nil {
		fmt.Fprintf(w, "Last RebootBlocked: %s ago on %s: %s\n", age(now, eventTime(lastBlocked)),
			oneLine(lastBlocked.InvolvedObject.Name, maxField), oneLine(lastBlocked.Message, 160))
	}
	fmt.Fprintln(w)
}

// statusRow is a node's line of the status table (tab-separated).
func statusRow(n *v1.Node, condType string, blocked map[string]v1.Event, evicted string, now time.Time) string {
	cond, condSince := "-", time.Time{}
	if c := contract.Condition(n, condType); c != nil {
		cond, condSince = oneLine(string(c.Status), maxField), c.LastTransitionTime.Time
	}
	if _, ok := n.Annotations[contract.AnnotationRebootRequested]; ok {
		cond += " (requested)"
	}
	state, stateSince := "-", time.Time{}
	if s, ok := n.Annotations[contract.AnnotationState]; ok {
		state = oneLine(s, maxField)
		if t, err := contract.ParseTime(n.Annotations[contract.AnnotationStateSince]); err == nil {
			stateSince = t
		}
		if r := n.Annotations[contract.AnnotationStateReason]; r != "" && s == string(contract.StateFailed) {
			state += " (" + oneLine(r, maxField) + ")"
		}
	}
	if contract.Disabled(n) {
		state = "disabled"
	}
	lastReboot := "-"
	if t, err := contract.ParseTime(n.Annotations[contract.AnnotationLastReboot]); err == nil {
		lastReboot = age(now, t) + " ago"
	}
	why := "-"
	// A block says something about a node that waits (or is held back
	// before its authorization), and only since its last state change.
	if e, ok := blocked[n.Name]; ok && (stateSince.IsZero() || eventTime(&e).After(stateSince)) &&
		(state == "-" || state == string(contract.StateDraining)) {
		why = oneLine(e.Message, 100)
	}
	return strings.Join([]string{n.Name, cond, age(now, condSince), state, age(now, stateSince), evicted, lastReboot, why}, "\t")
}

// Request asks for a reboot of a node: the reboot-requested annotation, with
// who and when as its value (the controller removes it when the reboot is
// done).
func Request(ctx context.Context, client kubernetes.Interface, o Options, node string, w io.Writer) error {
	value := "kubectl-nodereboot " + contract.FormatTime(o.Now())
	patch, err := (&contract.Patch{Annotations: map[string]*string{contract.AnnotationRebootRequested: &value}}).MergePatch()
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: Name}); err != nil {
		return err
	}
	fmt.Fprintf(w, "node/%s: reboot requested (%s=%q)\n", node, contract.AnnotationRebootRequested, value)
	return nil
}

// Pause sets (or, with paused false, removes) the pause annotation on the
// ConfigMap, creating it if needed.
func Pause(ctx context.Context, client kubernetes.Interface, o Options, paused bool, w io.Writer) error {
	cms := client.CoreV1().ConfigMaps(o.Namespace)
	ann := map[string]*string{contract.AnnotationPaused: nil, contract.AnnotationPausedReason: nil}
	if paused {
		ann[contract.AnnotationPaused] = new("true")
		if o.Reason != "" {
			ann[contract.AnnotationPausedReason] = &o.Reason
		}
	}
	patch, err := (&contract.Patch{Annotations: ann}).MergePatch()
	if err != nil {
		return err
	}
	_, err = cms.Patch(ctx, contract.ConfigMapName, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: Name})
	switch {
	case apierrors.IsNotFound(err) && paused:
		cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: contract.ConfigMapName, Namespace: o.Namespace,
			Annotations: map[string]string{contract.AnnotationPaused: "true"}}}
		if o.Reason != "" {
			cm.Annotations[contract.AnnotationPausedReason] = o.Reason
		}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return err
		}
	case apierrors.IsNotFound(err):
		// No ConfigMap, not paused.
	case err != nil:
		return err
	}
	if paused {
		fmt.Fprintf(w, "nodereboot paused (configmap %s/%s): no new node is taken; the nodes in progress finish\n", o.Namespace, contract.ConfigMapName)
	} else {
		fmt.Fprintf(w, "nodereboot resumed (configmap %s/%s)\n", o.Namespace, contract.ConfigMapName)
	}
	return nil
}

// History prints the node's reboot events (the controller's and the
// detector's), oldest first.
func History(ctx context.Context, client kubernetes.Interface, node string, w io.Writer) error {
	n, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	evs, err := nodeEvents(ctx, client, fields.Set{"involvedObject.name": node})
	if err != nil {
		return err
	}
	if s, ok := n.Annotations[contract.AnnotationLastReboot]; ok {
		fmt.Fprintf(w, "Last reboot: %s\n", oneLine(s, maxField))
	}
	if s, ok := n.Annotations[contract.AnnotationState]; ok {
		fmt.Fprintf(w, "State: %s since %s\n", oneLine(s, maxField), oneLine(n.Annotations[contract.AnnotationStateSince], maxField))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tREASON\tFROM\tCOUNT\tMESSAGE")
	shown := 0
	for i := range evs {
		e := &evs[i]
		if e.Source.Component != contract.ControllerComponent && e.Source.Component != contract.DetectorComponent &&
			e.ReportingController != contract.ControllerComponent && e.ReportingController != contract.DetectorComponent {
			continue
		}
		from := e.Source.Component
		if from == "" {
			from = e.ReportingController
		}
		count := e.Count
		if e.Series != nil {
			count = e.Series.Count
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", contract.FormatTime(eventTime(e)), oneLine(e.Type, maxField),
			oneLine(e.Reason, maxField), from, max(count, 1), oneLine(e.Message, 200))
		shown++
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if shown == 0 {
		fmt.Fprintf(w, "no nodereboot events for node %s (events expire, by default after an hour)\n", node)
	}
	return nil
}
