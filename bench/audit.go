package main

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"time"
)

// auditPolicy logs every request of nodereboot's service accounts (and the
// in-process detectors, which use the detector's) at Metadata level, once,
// when the response is complete.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts:nodereboot-system"]
- level: None
`

// auditEntry is the part of an audit event the benchmarks read.
type auditEntry struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
	StageTimestamp           time.Time `json:"stageTimestamp"`
}

// client names the binary behind an audit entry.
func (e auditEntry) client() string {
	switch {
	case strings.HasSuffix(e.User.Username, ":nodereboot-detector"):
		return "detector"
	case strings.HasSuffix(e.User.Username, ":nodereboot-controller"):
		return "controller"
	default:
		return "other"
	}
}

func (e auditEntry) resource() string {
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

// readAudit returns the audit entries received in [from, to), watches left
// out (a watch is one long request, not load per event).
func readAudit(path string, from, to time.Time) ([]auditEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []auditEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e auditEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Verb == "watch" {
			continue
		}
		if e.RequestReceivedTimestamp.Before(from) || !e.RequestReceivedTimestamp.Before(to) {
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// countBy counts entries by key.
func countBy(entries []auditEntry, key func(auditEntry) string) map[string]int {
	m := map[string]int{}
	for _, e := range entries {
		m[key(e)]++
	}
	return m
}

// durations returns, for the entries key selects, how long the API server
// took to answer each (received → response complete).
func durations(entries []auditEntry, key string, keyOf func(auditEntry) string) []time.Duration {
	var out []time.Duration
	for _, e := range entries {
		if keyOf(e) == key && !e.StageTimestamp.IsZero() {
			out = append(out, e.StageTimestamp.Sub(e.RequestReceivedTimestamp))
		}
	}
	return out
}
