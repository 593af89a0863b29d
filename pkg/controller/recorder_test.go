package controller

import (
	"strings"
	"testing"

	"github.com/nodereboot/nodereboot/pkg/contract"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
)

func TestCleanRecorderEscapesAndCaps(t *testing.T) {
	fake := record.NewFakeRecorder(3)
	r := CleanRecorder(fake)
	r.Eventf(contract.NodeRef("n1"), v1.EventTypeWarning, "InvalidAnnotation", "value %s", "\x1b[2Jgone\a")
	r.Event(contract.NodeRef("n1"), v1.EventTypeWarning, "X", strings.Repeat("x", 5000))
	got := <-fake.Events
	if strings.ContainsAny(got, "\x1b\a") || !strings.Contains(got, `\x1b`) {
		t.Fatalf("event %q: control characters not escaped", got)
	}
	if got = <-fake.Events; len(got) > 1100 {
		t.Fatalf("event of %d bytes: not capped", len(got))
	}
}
