// Command report turns the results of the fault suite (the JSON lines that
// NODEREBOOT_FAULTS_RESULTS collects, one per run) into the Markdown table
// of docs/reliability.md:
//
//	NODEREBOOT_FAULTS=full NODEREBOOT_FAULTS_RESULTS=/tmp/faults.jsonl go test -timeout 90m ./e2e/faults/
//	go run ./e2e/faults/report < /tmp/faults.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/nodereboot/nodereboot/e2e/faults/results"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	byFault := map[string][]results.Result{}
	var order []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r results.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return err
		}
		if _, ok := byFault[r.Fault]; !ok {
			order = append(order, r.Fault)
		}
		byFault[r.Fault] = append(byFault[r.Fault], r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintln(out, "| fault | runs | failed runs | invariant violations | nodes lost or left cordoned | failed with a reason | lost events | time to recover (median / max) | rollout (median) | max out |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, f := range order {
		rs := byFault[f]
		var violations, lost int
		var recov []*float64
		var roll []float64
		var failedRuns []string
		left, failed := map[string]bool{}, map[string]bool{}
		maxOut := 0
		for _, r := range rs {
			if !r.Passed {
				failedRuns = append(failedRuns, fmt.Sprintf("#%d", r.Run))
			}
			violations += len(r.Violations)
			lost += len(r.LostEvents)
			recov = append(recov, r.RecoverySeconds)
			roll = append(roll, r.RolloutSeconds)
			for _, n := range r.LeftCordoned {
				left["cordoned "+n] = true
			}
			for _, n := range r.NotReady {
				if _, f := r.Failed[n]; !f {
					left["lost "+n] = true
				}
			}
			for _, reason := range r.Failed {
				failed[reason] = true
			}
			maxOut = max(maxOut, r.MaxOut)
		}
		failedCell := "0"
		if len(failedRuns) > 0 {
			failedCell = fmt.Sprintf("**%d FAILED** (%s)", len(failedRuns), strings.Join(failedRuns, ", "))
		}
		fmt.Fprintf(out, "| %s | %d | %s | %d | %s | %s | %d | %s / %s | %.1f s | %d |\n",
			f, len(rs), failedCell, violations, list(left, "0"), list(failed, "—"), lost,
			seconds(medianRecovery(recov)), seconds(maxRecovery(recov)), median(roll), maxOut)
	}
	return nil
}

// seconds prints a recovery time; nil is a recovery that never happened.
func seconds(s *float64) string {
	if s == nil {
		return "never"
	}
	return fmt.Sprintf("%.1f s", *s)
}

// sortedRecoveries orders recovery times, those that never happened last
// (longer than any that did).
func sortedRecoveries(xs []*float64) []*float64 {
	s := append([]*float64(nil), xs...)
	sort.SliceStable(s, func(i, j int) bool {
		switch {
		case s[i] == nil:
			return false
		case s[j] == nil:
			return true
		}
		return *s[i] < *s[j]
	})
	return s
}

func medianRecovery(xs []*float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	return sortedRecoveries(xs)[len(xs)/2]
}

func maxRecovery(xs []*float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	return sortedRecoveries(xs)[len(xs)-1]
}

func list(m map[string]bool, none string) string {
	if len(m) == 0 {
		return none
	}
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
