package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	"github.com/nodereboot/nodereboot/pkg/sanitize"
)

// CleanRecorder wraps an event recorder so that every message is cleaned
// and capped (sanitize.Message) before it is recorded: the controller's
// messages quote annotation values, gate answers and API errors, which
// anybody may have written.
func CleanRecorder(r record.EventRecorder) record.EventRecorder { return cleanRecorder{r} }

type cleanRecorder struct{ record.EventRecorder }

func (c cleanRecorder) Event(obj runtime.Object, eventtype, reason, message string) {
	c.EventRecorder.Event(obj, eventtype, reason, sanitize.Message(message))
}

func (c cleanRecorder) Eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	c.Event(obj, eventtype, reason, fmt.Sprintf(format, args...))
}

func (c cleanRecorder) AnnotatedEventf(obj runtime.Object, annotations map[string]string, eventtype, reason, format string, args ...any) {
	c.EventRecorder.AnnotatedEventf(obj, annotations, eventtype, reason, "%s", sanitize.Message(fmt.Sprintf(format, args...)))
}
