package main

import (
	"fmt"
	"os"
	"runtime"
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

func sampleProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "VmRSS:":
			s.rssMiB = float64(kb) / 1024
		case "RssAnon:":
			s.anonMiB = float64(kb) / 1024
		case "RssFile:":
			s.fileMiB = float64(kb) / 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	s.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	return s, nil
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
