// Package results is the record of one fault-suite run: e2e/faults writes
// one per line to $NODEREBOOT_FAULTS_RESULTS and e2e/faults/report reads
// them into the table of docs/reliability.md.
package results

// Result is one run of one fault. Passed is false when the run failed in
// any way (a violation, the rollout not ending, any test error).
type Result struct {
	Fault          string  `json:"fault"`
	Run            int     `json:"run"`
	Seed           uint64  `json:"seed"`
	Passed         bool    `json:"passed"`
	RolloutSeconds float64 `json:"rolloutSeconds"`
	// RecoverySeconds is the time from the fault's end to the sign that
	// the system recovered; null when it never did (not 0: that is an
	// instant recovery).
	RecoverySeconds *float64          `json:"recoverySeconds"`
	Violations      []string          `json:"violations"`
	LostEvents      []string          `json:"lostEvents,omitempty"`
	LeftCordoned    []string          `json:"leftCordoned,omitempty"`
	NotReady        []string          `json:"notReady,omitempty"`
	Failed          map[string]string `json:"failed,omitempty"`
	Reboots         int               `json:"reboots"`
	MaxOut          int               `json:"maxOut"`
	Evictions       int               `json:"evictions"`
	Refused         int               `json:"evictionsRefused"`
	Detail          string            `json:"detail"`
}
