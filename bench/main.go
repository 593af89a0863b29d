package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"k8s.io/klog/v2"
)

// config sizes every benchmark; quick() is the tiny size `make test` runs.
type config struct {
	detectionTrials      int
	reactionTrials       int
	handoffNodes         int
	rolloutNodes         int
	rolloutConcurrent    int
	rolloutReboot        time.Duration
	steadyNodes          int
	steadyWindow         time.Duration
	waitingNodes         int
	waitingWindow        time.Duration
	demoReboot           time.Duration
	scaleNodes           int
	scaleConditions      int
	scaleConcurrent      int
	processDetectorLimit int
	idleWindow           time.Duration
	only                 map[string]bool
	out                  string
	logf                 func(string, ...any)
	keepLogs             bool
}

func fullConfig() config {
	return config{
		detectionTrials: 200, reactionTrials: 200, handoffNodes: 51,
		rolloutNodes: 100, rolloutConcurrent: 10, rolloutReboot: 5 * time.Second,
		steadyNodes: 1000, steadyWindow: 10 * time.Minute,
		waitingNodes: 100, waitingWindow: 2 * time.Minute,
		demoReboot: 3 * time.Second,
		scaleNodes: 5000, scaleConditions: 500, scaleConcurrent: 50,
		processDetectorLimit: 100, idleWindow: 30 * time.Second,
	}
}

func quickConfig() config {
	return config{
		detectionTrials: 3, reactionTrials: 2, handoffNodes: 3,
		rolloutNodes: 4, rolloutConcurrent: 2, rolloutReboot: 500 * time.Millisecond,
		steadyNodes: 4, steadyWindow: 3 * time.Second,
		waitingNodes: 3, waitingWindow: 3 * time.Second,
		demoReboot: 500 * time.Millisecond,
		scaleNodes: 20, scaleConditions: 10, scaleConcurrent: 5,
		processDetectorLimit: 2, idleWindow: time.Second,
	}
}

// Results is what a run writes as JSON.
type Results struct {
	Started  time.Time      `json:"started"`
	Command  string         `json:"command"`
	Machine  Machine        `json:"machine"`
	Quick    bool           `json:"quick"`
	Figures  []Figure       `json:"figures"`
	Details  map[string]any `json:"details"`
	Duration string         `json:"duration"`
	// Errors are the benchmarks that failed, with why: a failed sample,
	// more nodes out than --max-concurrent, an unfinished rollout. A run
	// with errors exits 1.
	Errors []string `json:"errors,omitempty"`
}

// Figure is one line of the table.
type Figure struct {
	Benchmark string   `json:"benchmark"`
	Name      string   `json:"name"`
	Summary   *Summary `json:"summary,omitempty"`
	Value     *float64 `json:"value,omitempty"`
	Unit      string   `json:"unit"`
	Aim       string   `json:"aim,omitempty"`
	Note      string   `json:"note,omitempty"`
}

func (r *Results) latency(bench, name string, s Summary, aim, note string) {
	r.Figures = append(r.Figures, Figure{Benchmark: bench, Name: name, Summary: &s, Unit: "ms", Aim: aim, Note: note})
}

func (r *Results) value(bench, name string, v float64, unit, aim, note string) {
	r.Figures = append(r.Figures, Figure{Benchmark: bench, Name: name, Value: &v, Unit: unit, Aim: aim, Note: note})
}

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

var benchmarks = []struct {
	name string
	run  func(context.Context, config, *Results) error
}{
	{"detection", benchDetection},
	{"reaction", benchReaction},
	{"handoff", benchHandoff},
	{"rollout", benchRollout},
	{"demo", benchDemo},
	{"steady", benchSteady},
	{"waiting", benchWaiting},
	{"scale", benchScale},
}

func run(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "tiny sizes: checks that every benchmark still works (make test runs this)")
	only := fs.String("only", "", "comma-separated benchmarks to run (default all): detection,reaction,handoff,rollout,demo,steady,waiting,scale")
	out := fs.String("out", "", "JSON output (default bench/results/<date>.json; with --quick none)")
	keep := fs.Bool("keep-logs", false, "keep the clusters' folders and logs")
	steadyNodes := fs.Int("steady-nodes", 0, "override: nodes in the steady-state API load benchmark (default 1000)")
	steadyWindow := fs.Duration("steady-window", 0, "override: its measurement window (default 10m)")
	scaleNodes := fs.Int("scale-nodes", 0, "override: static nodes in the controller's scale benchmark (default 5000)")
	scaleConditions := fs.Int("scale-conditions", 0, "override: conditions set at once in the scale benchmark (default 500)")
	scaleConcurrent := fs.Int("scale-concurrent", 0, "override: --max-concurrent in the scale benchmark (default 50)")
	rolloutNodes := fs.Int("rollout-nodes", 0, "override: nodes in the makespan benchmark (default 100)")
	trials := fs.Int("trials", 0, "override: trials of the detection and reaction latencies (default 200)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	cfg.keepLogs = *keep
	for _, o := range []struct {
		name string
		v    int
		dst  *int
	}{{"steady-nodes", *steadyNodes, &cfg.steadyNodes}, {"scale-nodes", *scaleNodes, &cfg.scaleNodes}, {"scale-conditions", *scaleConditions, &cfg.scaleConditions},
		{"scale-concurrent", *scaleConcurrent, &cfg.scaleConcurrent}, {"rollout-nodes", *rolloutNodes, &cfg.rolloutNodes},
		{"trials", *trials, &cfg.detectionTrials}, {"trials", *trials, &cfg.reactionTrials}} {
		switch {
		case o.v < 0:
			fmt.Fprintf(os.Stderr, "invalid --%s: must be positive\n", o.name)
			return 2
		case o.v > 0:
			*o.dst = o.v
		}
	}
	if cfg.scaleConditions > cfg.scaleNodes {
		fmt.Fprintf(os.Stderr, "invalid --scale-conditions: more than --scale-nodes (%d)\n", cfg.scaleNodes)
		return 2
	}
	if *steadyWindow < 0 {
		fmt.Fprintln(os.Stderr, "invalid --steady-window: must be positive")
		return 2
	} else if *steadyWindow > 0 {
		cfg.steadyWindow = *steadyWindow
	}
	cfg.logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...) }
	if *only != "" {
		cfg.only = map[string]bool{}
		known := map[string]bool{}
		for _, b := range benchmarks {
			known[b.name] = true
		}
		for _, name := range strings.Split(*only, ",") {
			if !known[name] {
				fmt.Fprintf(os.Stderr, "invalid --only: unknown benchmark %q\n", name)
				return 2
			}
			cfg.only[name] = true
		}
	}
	cfg.out = *out
	if cfg.out == "" && !*quick {
		cfg.out = filepath.Join("bench", "results", time.Now().Format("2006-01-02")+".json")
	}
	// In-process detectors log through klog; their logs are not figures.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	if err := raiseInotifyLimit(8192); err != nil {
		cfg.logf("cannot raise fs.inotify.max_user_instances (%v): runs with many detectors may fail", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := &Results{Started: time.Now(), Command: "go run ./bench " + strings.Join(args, " "), Machine: machine(), Quick: *quick, Details: map[string]any{}}
	failed := false
	for _, b := range benchmarks {
		if cfg.only != nil && !cfg.only[b.name] {
			continue
		}
		cfg.logf("== %s", b.name)
		start := time.Now()
		if err := b.run(ctx, cfg, res); err != nil {
			fmt.Fprintf(os.Stderr, "benchmark %s: %v\n", b.name, err)
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", b.name, err))
			failed = true
			if ctx.Err() != nil {
				break
			}
		}
		cfg.logf("== %s took %s", b.name, time.Since(start).Round(time.Second))
		res.Duration = time.Since(res.Started).Round(time.Second).String()
		if err := save(cfg.out, res); err != nil { // what is measured so far survives an interruption
			cfg.logf("saving results: %v", err)
		}
	}
	res.Duration = time.Since(res.Started).Round(time.Second).String()
	printTable(stdout, res)
	if err := save(cfg.out, res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		failed = true
	} else if cfg.out != "" {
		fmt.Fprintf(stdout, "\nwritten to %s\n", cfg.out)
	}
	if failed {
		return 1
	}
	return 0
}

// save writes the results as JSON to path ("" writes nothing).
func save(path string, r *Results) error {
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func printTable(w io.Writer, r *Results) {
	fmt.Fprintf(w, "\nnodereboot benchmarks — %d CPUs (%s), %d GiB, %s, %s; took %s\n\n",
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemoryGiB, r.Machine.Kernel, r.Machine.Go, r.Duration)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BENCHMARK\tFIGURE\tMEDIAN\tP99\tMIN\tMAX\tN\tUNIT\tAIM")
	for _, f := range r.Figures {
		if f.Summary != nil {
			s := f.Summary
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%s\t%s\n", f.Benchmark, f.Name, s.Median, s.P99, s.Min, s.Max, s.N, f.Unit, f.Aim)
		} else if f.Value != nil {
			fmt.Fprintf(tw, "%s\t%s\t%.3g\t\t\t\t\t%s\t%s\n", f.Benchmark, f.Name, *f.Value, f.Unit, f.Aim)
		}
	}
	tw.Flush()
	for _, e := range r.Errors {
		fmt.Fprintf(w, "FAILED %s\n", e)
	}
}
