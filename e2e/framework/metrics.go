package framework

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metric reads one sample from the Prometheus text endpoint at
// http://addr/metrics. sample is the series as exposed: a name, or a name
// with its labels, e.g. `nodereboot_reboot_blocked{reason="Paused"}`.
func Metric(addr, sample string) (float64, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			value, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // an optional timestamp follows
			return strconv.ParseFloat(value, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no sample %s at %s/metrics", sample, addr)
}
