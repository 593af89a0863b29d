package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the figures were measured.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemoryGiB int    `json:"memory_gib"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		m.MemoryGiB = (kb + 512*1024) / (1024 * 1024)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// procSample is a process's resident memory and CPU time at one moment.
type procSample struct {
	at               time.Time
	rssMiB           float64
	anonMiB, fileMiB float64 // RSS of the heap and stacks vs. of mapped files (the binary)
	cpu              time.Duration
}

const clockTicks = 100 // USER_HZ on Linux

// sampleProc reads a process's memory and CPU time from /proc. Any field it
// cannot read is an error, never a zero.
func sampleProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	fail := func(format string, args ...any) (procSample, error) {
		return procSample{}, fmt.Errorf("sampling process %d: %s", pid, fmt.Sprintf(format, args...))
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return fail("%v", err)
	}
	found := map[string]*float64{"VmRSS:": &s.rssMiB, "RssAnon:": &s.anonMiB, "RssFile:": &s.fileMiB}
	for _, line := range strings.Split(string(status), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		dst, ok := found[fields[0]]
		if !ok {
			continue
		}
		kb, err := strconv.Atoi(fields[1])
		if err != nil {
			return fail("%s %q: %v", fields[0], fields[1], err)
		}
		*dst = float64(kb) / 1024
		delete(found, fields[0])
	}
	if len(found) > 0 {
		return fail("no %v in /proc/%d/status", keys(found), pid)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return fail("%v", err)
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 || i+2 > len(stat) {
		return fail("cannot parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(stat[i+2:]))
	if len(fields) < 13 {
		return fail("cannot parse /proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.Atoi(fields[11])
	stime, err2 := strconv.Atoi(fields[12])
	if err := errors.Join(err1, err2); err != nil {
		return fail("utime/stime in /proc/%d/stat: %v", pid, err)
	}
	s.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	return s, nil
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Footprint is a process's memory and CPU use over a window.
type Footprint struct {
	RSSMiB     float64 `json:"rss_mib"`
	AnonMiB    float64 `json:"rss_anon_mib"`
	FileMiB    float64 `json:"rss_file_mib"`
	CPUPercent float64 `json:"cpu_percent_of_one_core"`
	WindowSec  float64 `json:"window_seconds"`
}

func footprint(a, b procSample) Footprint {
	window := b.at.Sub(a.at)
	f := Footprint{RSSMiB: b.rssMiB, AnonMiB: b.anonMiB, FileMiB: b.fileMiB, WindowSec: window.Seconds()}
	if window > 0 {
		f.CPUPercent = 100 * float64(b.cpu-a.cpu) / float64(window)
	}
	return f
}

// raiseInotifyLimit lets hundreds of detectors watch their sentinel folders
// (each holds an inotify instance; the default limit is 128 per user).
func raiseInotifyLimit(want int) error {
	const path = "/proc/sys/fs/inotify/max_user_instances"
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if have, _ := strconv.Atoi(strings.TrimSpace(string(b))); have >= want {
		return nil
	}
	return os.WriteFile(path, []byte(strconv.Itoa(want)), 0o644)
}
