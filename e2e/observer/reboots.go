package observer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"sort"
	"time"
)

// Reboot is one line of a simulated host's reboot log (e2e/nodesim writes
// it when the node is back; spelled out again here).
type Reboot struct {
	Node      string    `json:"node"`
	Requested time.Time `json:"requested"`
	Up        time.Time `json:"up"`
	OldBootID string    `json:"oldBootID"`
	NewBootID string    `json:"newBootID"`
}

func (r Reboot) key() string { return r.Node + "/" + r.OldBootID }

// readLogs reads the reboot logs that grew and checks the new reboots.
func (o *Observer) readLogs() {
	o.mu.Lock()
	hosts := make(map[string]string, len(o.hosts))
	for node, path := range o.hosts {
		hosts[node] = path
	}
	o.mu.Unlock()
	for node, path := range hosts {
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		o.mu.Lock()
		same := o.logSizes[path] == fi.Size()
		o.mu.Unlock()
		if same {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var rs []Reboot
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var r Reboot
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.OldBootID != "" {
				rs = append(rs, r)
			}
		}
		// Only complete lines count; a line being written is read next time.
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			o.mu.Lock()
			o.logSizes[path] = int64(i + 1)
			o.reboots[node] = rs
			o.mu.Unlock()
		}
	}
	o.mu.Lock()
	o.checkReboots(false)
	o.broadcast()
	o.mu.Unlock()
}

// checkReboots runs the I2 checks of every reboot whose new boot the node
// watch has shown (all of them when final). o.mu is held.
func (o *Observer) checkReboots(final bool) {
	nodes := make([]string, 0, len(o.reboots))
	for node := range o.reboots {
		nodes = append(nodes, node)
	}
	sort.Strings(nodes)
	for _, node := range nodes {
		hist := o.nodes[node]
		for _, r := range o.reboots[node] {
			if o.checked[r.key()] {
				continue
			}
			if !final && !seenBoot(hist, r.NewBootID) {
				continue
			}
			o.checked[r.key()] = true
			o.checkReboot(node, r, hist)
		}
	}
}

func seenBoot(hist []version, boot string) bool {
	for _, v := range hist {
		if v.bootID == boot {
			return true
		}
	}
	return false
}

// rebootIndex is the index in hist of the version where the host of r went
// down (the simulator's powered-off mark with the old boot ID), or, if that
// version was not seen, of the first with the new boot ID (weak). len(hist)
// when neither was seen.
func rebootIndex(hist []version, r Reboot) (int, bool) {
	for i, v := range hist {
		if v.bootID == r.OldBootID && v.ann[annPoweredOff] != "" {
			return i, false
		}
	}
	for i, v := range hist {
		if v.bootID == r.NewBootID {
			return i, true
		}
	}
	return len(hist), true
}

// lastRun is the first index of the last run of consecutive versions
// before end whose annotation key equals value, or -1.
func lastRun(hist []version, end int, key, value string) int {
	start := -1
	for i := end - 1; i >= 0; i-- {
		if hist[i].ann[key] == value {
			start = i
		} else if start >= 0 {
			break
		}
	}
	return start
}

// checkReboot is I2 for one reboot. o.mu is held.
func (o *Observer) checkReboot(node string, r Reboot, hist []version) {
	p, weak := rebootIndex(hist, r)
	// The authorization: the last run of versions naming the old boot
	// before the host went down.
	a := lastRun(hist, p, annAuthorized, r.OldBootID)
	if a < 0 {
		if gapBefore(hist, p) {
			o.note("%s: the authorization of the reboot of boot %s fell in a gap of the node watch: not verified", node, r.OldBootID)
			return
		}
		o.violate("I2", node, "rebooted (boot %s -> %s, requested %s) without an observed %s=%s",
			r.OldBootID, r.NewBootID, r.Requested.Format("15:04:05.000"), annAuthorized, r.OldBootID)
		return
	}
	// The detector's commitment: the version where it wrote rebooting=old
	// (it does so right before every reboot request).
	if q := lastRun(hist, p, annRebooting, r.OldBootID); q >= 0 {
		if got := hist[q].ann[annAuthorized]; got != r.OldBootID {
			o.violate("I2", node, "the detector committed to rebooting boot %s (rv %d) while %s was %q",
				r.OldBootID, hist[q].rv, annAuthorized, got)
		} else if hist[q].forged(annAuthorized) || hist[q].forged(annState) {
			o.violate("I2", node, "the detector committed to rebooting boot %s (rv %d) on an authorization written by %s, not the controller",
				r.OldBootID, hist[q].rv, hist[q].owners[annAuthorized]+hist[q].owners[annState])
		}
	} else if !weak {
		o.note("%s: no %s=%s seen before the reboot of that boot", node, annRebooting, r.OldBootID)
	}
	// One reboot per pass through the pipeline, none outside it.
	if p >= len(hist) {
		return // the node was deleted before it came back
	}
	start, end, gap, ok := episode(hist, p)
	if !ok && weak && hist[p].afterGap {
		// The host went down and came back inside a gap: the first
		// version seen with the new boot ID is already past the pipeline.
		o.note("%s: the reboot of boot %s fell in a gap of the node watch: that it was inside the pipeline is not verified", node, r.OldBootID)
		return
	}
	if !ok {
		o.violate("I2", node, "reboot of boot %s outside the pipeline (no %s)", r.OldBootID, annState)
		return
	}
	n := 0
	for _, other := range o.reboots[node] {
		if !o.checked[other.key()] {
			continue
		}
		if q, _ := rebootIndex(hist, other); q < len(hist) && hist[q].rv >= start && hist[q].rv < end {
			n++
		}
	}
	switch {
	case n > 1 && gap:
		o.note("%s: %d reboots in what looks like one pass through the pipeline, across a gap of the node watch: not verified", node, n)
	case n > 1:
		o.violate("I2", node, "%d reboots in one pass through the pipeline (rv %d..%d)", n, start, end)
	}
}

// gapBefore reports whether a version up to index p (included) follows a
// gap of the node watch.
func gapBefore(hist []version, p int) bool {
	for i := 0; i <= p && i < len(hist); i++ {
		if hist[i].afterGap {
			return true
		}
	}
	return false
}

// checkDrained is the drain part of I2 for every reboot: every pod that had
// to go was gone before the authorization was written. It runs at the end,
// when the pod watch has caught up. o.mu is held.
func (o *Observer) checkDrained() {
	for node, rs := range o.reboots {
		hist := o.nodes[node]
		for _, r := range rs {
			p, _ := rebootIndex(hist, r)
			if a := lastRun(hist, p, annAuthorized, r.OldBootID); a >= 0 {
				o.checkPodsGone(node, r, hist[a].rv)
			}
		}
	}
}

func (o *Observer) checkPodsGone(node string, r Reboot, authRV uint64) {
	var left []string
	for _, pd := range o.pods {
		if pd.node != node || !pd.mustEvict || pd.firstRV >= authRV {
			continue
		}
		if pd.goneUnknown {
			o.note("%s: pod %s was deleted while the watch was down: its eviction before the authorization of %s is not verified", node, pd.key, r.OldBootID)
			continue
		}
		if pd.goneRV == 0 || pd.goneRV > authRV {
			left = append(left, pd.key)
		}
	}
	sort.Strings(left)
	if len(left) > 0 {
		if o.cfg.ForceReboot {
			o.note("%s: rebooted with pods left (--on-drain-failure=reboot): %v", node, left)
		} else {
			o.violate("I2", node, "reboot of boot %s authorized (rv %d) while pods were still on the node: %v", r.OldBootID, authRV, left)
		}
	}
}

// episode is the pass through the pipeline (the versions with a state)
// that contains version i: [start, end) in resource versions, and whether a
// version in it follows a gap of the node watch (two passes may then look
// like one).
func episode(hist []version, i int) (start, end uint64, gap, ok bool) {
	if _, has := hist[i].state(); !has {
		return 0, 0, false, false
	}
	s := i
	for s > 0 {
		if _, has := hist[s-1].state(); !has || hist[s-1].deleted {
			break
		}
		s--
	}
	end = ^uint64(0)
	for j := s; j < len(hist); j++ {
		if _, has := hist[j].state(); j > i && (!has || hist[j].deleted) {
			end = hist[j].rv
			break
		}
		gap = gap || hist[j].afterGap
	}
	return hist[s].rv, end, gap, true
}
