package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/gates"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
	"github.com/nodereboot/nodereboot/pkg/version"
)

// Name is the plugin's binary name; kubectl runs it as `kubectl nodereboot`.
const Name = "kubectl-nodereboot"

const usage = `kubectl nodereboot: see and steer nodereboot (docs/kubectl-plugin.md).

Usage:
  kubectl nodereboot status                 every node: reboot condition, pipeline state, why it is blocked
  kubectl nodereboot request NODE           ask for a reboot of NODE (the reboot-requested annotation)
  kubectl nodereboot pause [--reason TEXT]  take no new node (the nodes in progress finish)
  kubectl nodereboot resume                 take nodes again
  kubectl nodereboot history NODE           the reboot events of NODE, oldest first

Flags:
`

// Options are the plugin's flags besides the kubeconfig ones.
type Options struct {
	// Namespace is the controller's namespace (the pause ConfigMap).
	Namespace string
	// ConditionType is the reboot condition shown by status.
	ConditionType string
	// Reason is the pause reason.
	Reason string
	// Now is the clock (for ages and request times).
	Now func() time.Time
}

// Run runs the plugin with args (without the program name) and returns the
// exit code: 0 done, 1 failed, 2 bad usage. newClient makes the client
// from the kubeconfig flags (nil: from genericclioptions).
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, newClient func(*genericclioptions.ConfigFlags) (kubernetes.Interface, error)) int {
	fs := pflag.NewFlagSet(Name, pflag.ContinueOnError)
	fs.SetOutput(streams.ErrOut)
	kube := genericclioptions.NewConfigFlags(true)
	kube.AddFlags(fs)
	o := Options{Now: time.Now}
	fs.StringVar(&o.Namespace, "controller-namespace", "nodereboot-system", "Namespace of nodereboot-controller (where the pause ConfigMap "+contract.ConfigMapName+" lives).")
	fs.StringVar(&o.ConditionType, "condition-type", contract.DefaultConditionType, "The reboot condition to show.")
	fs.StringVar(&o.Reason, "reason", "", "pause: why, for the RebootBlocked events and status.")
	showVersion := fs.Bool("version", false, "Print the version and exit.")
	fs.Usage = func() {
		fmt.Fprint(streams.ErrOut, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(streams.ErrOut, "%s: %v\n", Name, err)
		return 2
	}
	if *showVersion {
		fmt.Fprintln(streams.Out, Name, version.Version)
		return 0
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	cmd, rest := rest[0], rest[1:]
	wantArgs := map[string]int{"status": 0, "request": 1, "pause": 0, "resume": 0, "history": 1}
	n, known := wantArgs[cmd]
	if !known {
		fmt.Fprintf(streams.ErrOut, "%s: unknown command %q (want status, request, pause, resume or history)\n", Name, cmd)
		return 2
	}
	if len(rest) != n {
		fmt.Fprintf(streams.ErrOut, "%s %s: want %d argument(s), got %q\n", Name, cmd, n, rest)
		return 2
	}
	if newClient == nil {
		newClient = func(f *genericclioptions.ConfigFlags) (kubernetes.Interface, error) {
			cfg, err := f.ToRESTConfig()
			if err != nil {
				return nil, err
			}
			cfg.UserAgent = Name + "/" + version.Version
			return kubernetes.NewForConfig(cfg)
		}
	}
	client, err := newClient(kube)
	if err != nil {
		fmt.Fprintf(streams.ErrOut, "%s: %v\n", Name, err)
		return 1
	}
	switch cmd {
	case "status":
		err = Status(ctx, client, o, streams.Out)
	case "request":
		err = Request(ctx, client, o, rest[0], streams.Out)
	case "pause":
		err = Pause(ctx, client, o, true, streams.Out)
	case "resume":
		err = Pause(ctx, client, o, false, streams.Out)
	case "history":
		err = History(ctx, client, rest[0], streams.Out)
	}
	if err != nil {
		fmt.Fprintf(streams.ErrOut, "%s %s: %s\n", Name, cmd, sanitize.Message(err.Error()))
		return 1
	}
	return 0
}

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
	blocked := map[string]v1.Event{}
	var lastBlocked *v1.Event
	evs, err := nodeEvents(ctx, client, fields.Set{"reason": contract.ReasonRebootBlocked})
	if err != nil {
		return err
	}
	for i := range evs {
		blocked[evs[i].InvolvedObject.Name] = evs[i]
		lastBlocked = &evs[i]
	}
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
	sort.Slice(nodes.Items, func(i, j int) bool { return nodes.Items[i].Name < nodes.Items[j].Name })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\t"+strings.ToUpper(o.ConditionType)+"\tSINCE\tSTATE\tSINCE\tLAST REBOOT\tBLOCKED")
	for i := range nodes.Items {
		n := &nodes.Items[i]
		cond, condSince := "-", time.Time{}
		if c := contract.Condition(n, o.ConditionType); c != nil {
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
		// A block says something about a node that waits (or is held
		// back before its authorization), and only since its last
		// state change.
		if e, ok := blocked[n.Name]; ok && (stateSince.IsZero() || eventTime(&e).After(stateSince)) &&
			(state == "-" || state == string(contract.StateDraining)) {
			why = oneLine(e.Message, 100)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, cond, age(now, condSince), state, age(now, stateSince), lastReboot, why)
	}
	return tw.Flush()
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
