package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/nodesim"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// view draws the rollout: on a terminal a table of nodes and the latest
// events, redrawn as they change; elsewhere (CI logs, a pipe) one line per
// event.
type view struct {
	out     io.Writer
	tty     bool
	width   func() int // the terminal's columns, to cut event lines
	w       *watcher
	printed int // events already printed, for the line mode
}

func newView(out io.Writer, tty bool, w *watcher, width func() int) *view {
	return &view{out: out, tty: tty, w: w, width: width}
}

// run redraws on every change until finished() or ctx ends.
func (v *view) run(ctx context.Context, finished func() bool) error {
	limit := time.NewTicker(100 * time.Millisecond) // at most 10 redraws a second
	defer limit.Stop()
	for {
		v.draw()
		if finished() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-v.w.changed:
		}
		select { // let a burst of updates settle into one frame
		case <-ctx.Done():
			return ctx.Err()
		case <-limit.C:
		}
	}
}

func (v *view) draw() {
	evs := v.w.sortedEvents()
	if !v.tty {
		for _, e := range evs[v.printed:] {
			fmt.Fprintln(v.out, formatEvent(e))
		}
		v.printed = len(evs)
		return
	}
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[2J") // home, clear screen
	fmt.Fprintf(&b, "nodereboot demo — %s   (Ctrl-C to stop)\n\n", time.Now().Format("15:04:05"))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREBOOT REQUIRED\tSTATE\tSCHEDULABLE\tREADY\tBOOT ID\tREBOOTS")
	for _, host := range v.w.h.Nodes {
		n := v.w.node(host.Name())
		if n == nil {
			continue
		}
		cond := "-"
		if c := condition(n, contract.DefaultConditionType); c != nil {
			cond = fmt.Sprintf("%s (%s)", c.Status, since(c.LastTransitionTime.Time))
		}
		state := "-"
		if s := n.Annotations[contract.AnnotationState]; s != "" {
			state = s
			if t, err := contract.ParseTime(n.Annotations[contract.AnnotationStateSince]); err == nil {
				state += " (" + since(t) + ")"
			}
		}
		sched := "yes"
		if n.Spec.Unschedulable {
			sched = "cordoned"
		}
		ready := "NotReady"
		if framework.NodeReady(n) {
			ready = "Ready"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", n.Name, cond, state, sched, ready, short(n.Status.NodeInfo.BootID), len(host.Reboots()))
	}
	tw.Flush()
	b.WriteString("\nEVENTS (kubectl get events -A --field-selector involvedObject.kind=Node)\n")
	const shown = 18
	if len(evs) > shown {
		evs = evs[len(evs)-shown:]
	}
	cols := v.width()
	for _, e := range evs {
		line := formatEvent(e)
		if cols > 1 && len(line) >= cols {
			line = line[:cols-1]
		}
		b.WriteString(line + "\n")
	}
	io.WriteString(v.out, b.String())
}

// nodeColumn is the width of the node column of event lines: the longest
// node name (AKS's names are long).
var nodeColumn = 8

func formatEvent(e *corev1.Event) string {
	src := e.Source.Component
	if src == "" {
		src = e.ReportingController
	}
	msg := e.Message
	if len(msg) > 90 {
		msg = msg[:87] + "..."
	}
	return fmt.Sprintf("%s  %-7s %-*s %-22s %-21s %s", eventTime(e).Format("15:04:05.000"), e.Type, nodeColumn, e.InvolvedObject.Name, src, e.Reason, msg)
}

// timeline prints, per node, when each step was seen, counted from start,
// and how many reboots the host went through.
func (v *view) timeline(start time.Time, hosts []*nodesim.Node) {
	fmt.Fprintln(v.out, "\nTIMELINE (seconds after the first sentinel was created, as seen by a watch on the nodes)")
	tw := tabwriter.NewWriter(v.out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NODE\t"+strings.Join(stepNames[:], "\t")+"\tREBOOTS\t")
	for _, host := range hosts {
		seen := v.w.timeline(host.Name())
		row := []string{host.Name()}
		for s := range numSteps {
			t, ok := seen[s]
			if !ok {
				row = append(row, "-")
				continue
			}
			row = append(row, strconv.FormatFloat(t.Sub(start).Seconds(), 'f', 2, 64))
		}
		row = append(row, strconv.Itoa(len(host.Reboots())))
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
}

func since(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }
