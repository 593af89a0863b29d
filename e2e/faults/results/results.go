// Package results is the record of one fault-suite run: e2e/faults writes
// one per line to $NODEREBOOT_FAULTS_RESULTS and e2e/faults/report reads
// them into the table of docs/reliability.md.
package results

// Result is one run of one fault.
type Result struct {
	Fault           string            `json:"fault"`
	Run             int               `json:"run"`
	Seed            uint64            `json:"seed"`
	Passed          bool              `json:"passed"`
	RolloutSeconds  float64           `json:"rolloutSeconds"`
	RecoverySeconds float64           `json:"recoverySeconds"`
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
