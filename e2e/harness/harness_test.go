package harness

import (
	"os"
	"testing"
	"time"

	"github.com/nodereboot/nodereboot/e2e/framework"
)

// The leader is the replica that logged "Started leading" with the lease
// holder's identity, not the standby that logged it as the "New leader".
func TestControllerWithIdentity(t *testing.T) {
	dir := t.TempDir()
	var ps []*framework.Process
	for i, lines := range []string{
		`I1125 21:04:19.792311 2256 app.go:237] "New leader" logger="controller" identity="vm_leader"` + "\n",
		`I1125 21:04:19.667343 2257 app.go:215] "Started leading" logger="controller" identity="vm_leader"` + "\n",
	} {
		p := framework.NewProcess("controller-"+string(rune('0'+i)), "/bin/sleep", []string{"30"}, dir)
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(time.Second) })
		f, err := os.OpenFile(p.LogFile, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(lines); err != nil {
			t.Fatal(err)
		}
		f.Close()
		ps = append(ps, p)
	}
	h := &Harness{Controllers: ps}
	if got := h.controllerWithIdentity("vm_leader"); got != ps[1] {
		t.Fatalf("leader %v, want controller-1", got)
	}
	if got := h.controllerWithIdentity("vm_other"); got != nil {
		t.Fatalf("leader %v for an unknown identity, want none", got.Name)
	}
}
