package detector

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/kubeclient/fromclientset"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

// An event's message is cleaned and capped whatever it quotes.
func TestEventRecorderCleansMessages(t *testing.T) {
	client := fake.NewClientset()
	ctx := context.Background()
	r := newEventRecorder(ctx, fromclientset.New(client), nodeName)
	r.Event(contract.NodeRef(nodeName), v1.EventTypeNormal, contract.ReasonRebootRequired,
		"required by evil\x1b[2J\u009b\u202e\xff "+strings.Repeat("p", 3000))
	r.Stop(10 * time.Second)
	events, err := client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if err != nil || len(events.Items) != 1 {
		t.Fatalf("events: %v, %v", events, err)
	}
	msg := events.Items[0].Message
	if !strings.HasPrefix(msg, `required by evil\x1b[2J\u009b\u202e\xff ppp`) || len(msg) > sanitize.MaxMessage ||
		!strings.HasSuffix(msg, sanitize.Ellipsis) {
		t.Fatalf("message %q (%d bytes)", msg[:min(len(msg), 80)], len(msg))
	}
}
