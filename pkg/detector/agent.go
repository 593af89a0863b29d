package detector

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/reboot"
)

// maxWarned bounds the memory of invalid values already warned about.
const maxWarned = 256

// agent carries out rebootDecision for the node: it reboots when the
// controller authorized the current boot, cleans up after a reboot and warns
// about unusable authorizations. One loop does everything, so two reboots
// are never issued concurrently.
type agent struct {
	client   Client
	lister   corelisters.NodeLister
	nodeName string
	bootID   string
	rebooter reboot.Rebooter
	recorder record.EventRecorder
	metrics  *metrics
	clock    clock.WithTicker
	// rebootBackoff spaces failed reboot attempts; writeRetry failed
	// annotation writes.
	rebootBackoff wait.Backoff
	writeRetry    wait.Backoff
	// probeNow asks for an immediate sentinel observation (nil with
	// --detection=false).
	probeNow func()

	wake chan struct{} // node changed; capacity 1
	// synced, when set, is called with the node each sync acted on,
	// after it acted (tests wait on it).
	synced func(*v1.Node)

	previous  sets.Set[string] // boot IDs known to be earlier boots
	announced sets.Set[string] // old boot IDs whose Rebooted event is recorded
	warned    sets.Set[string] // invalid values already warned about

	issued      bool      // a reboot request was accepted: never issue another
	nextAttempt time.Time // after a failed reboot, no attempt before this
	rebootFails wait.Backoff
	writeFails  wait.Backoff
}

func (a *agent) poke() { poke(a.wake) }

func (a *agent) run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("agent")
	ctx = klog.NewContext(ctx, logger)
	a.previous, a.announced, a.warned = sets.New[string](), sets.New[string](), sets.New[string]()
	a.rebootFails, a.writeFails = a.rebootBackoff, a.writeRetry
	runLoop(ctx, a.clock, a.wake, a.sync)
}

// sync acts on the cached node and returns when to look again (0: on the
// next node change only).
func (a *agent) sync(ctx context.Context) time.Duration {
	logger := klog.FromContext(ctx)
	node, err := a.lister.Get(a.nodeName)
	if apierrors.IsNotFound(err) {
		return 0
	} else if err != nil {
		logger.Error(err, "Cannot read the node from the cache")
		return a.writeFails.Step()
	}
	if a.synced != nil {
		defer a.synced(node)
	}
	d := rebootDecision(node, a.bootID, a.previous)
	var retry time.Duration

	if d.Rebooted {
		a.previous.Insert(d.OldBootID)
		if !a.announced.Has(d.OldBootID) {
			a.announced.Insert(d.OldBootID)
			a.recorder.Eventf(contract.NodeRef(a.nodeName), v1.EventTypeNormal, contract.ReasonRebooted,
				"Node rebooted: boot ID %s -> %s", d.OldBootID, a.bootID)
			logger.Info("Node rebooted", "oldBootID", d.OldBootID, "bootID", a.bootID)
			if a.probeNow != nil {
				a.probeNow()
			}
		}
		if err := a.setRebooting(ctx, nil); err != nil {
			retry = a.writeFailed(ctx, err)
		}
	}
	if d.ClearRebooting && !a.issued {
		logger.Info("Authorization withdrawn before the reboot; removing the rebooting annotation", "bootID", a.bootID)
		if err := a.setRebooting(ctx, nil); err != nil {
			retry = a.writeFailed(ctx, err)
		}
	}
	if d.InvalidValue != "" && !a.warned.Has(d.InvalidValue) {
		if a.warned.Len() >= maxWarned {
			a.warned.Clear()
		}
		a.warned.Insert(d.InvalidValue)
		a.metrics.error(ErrorInvalidAnnotation)
		a.recorder.Event(contract.NodeRef(a.nodeName), v1.EventTypeWarning, contract.ReasonInvalidAnnotation, d.Invalid)
		logger.Info("Invalid reboot authorization", "value", d.InvalidValue, "bootID", a.bootID)
	}
	if d.Reboot && !a.issued {
		if wait := a.nextAttempt.Sub(a.clock.Now()); wait > 0 {
			return minPositive(retry, wait)
		}
		if next := a.reboot(ctx, d.Resume, node.ResourceVersion); next > 0 {
			retry = minPositive(retry, next)
		}
	}
	if retry == 0 {
		a.writeFails = a.writeRetry
	}
	return retry
}

// conflictRetry is how soon a commitment that lost a race with another
// write of the node is tried again (if the informer has not delivered the
// newer version by then).
const conflictRetry = 200 * time.Millisecond

// reboot records the reboot on the node, then asks for it. It returns when
// to try again after a failure, 0 after a success. rv is the resourceVersion
// of the node the decision was made on.
func (a *agent) reboot(ctx context.Context, resume bool, rv string) time.Duration {
	logger := klog.FromContext(ctx)
	// The commitment: rebooting=<current boot ID>, written before the
	// reboot (after the boot, an older boot ID here proves the reboot
	// happened) and only if the node is still the version whose
	// authorization the decision read. Without that precondition an
	// authorization withdrawn (or changed) after the read would still be
	// acted on. When resuming, the annotation is already there: the same
	// write changes nothing but still checks the precondition.
	if err := a.setRebooting(ctx, &a.bootID, rv); err != nil {
		if apierrors.IsConflict(err) {
			logger.V(2).Info("The node changed since the reboot was decided; deciding again", "resourceVersion", rv)
			return conflictRetry
		}
		return a.writeFailed(ctx, err)
	}
	msg := fmt.Sprintf("Rebooting: %s equals the current boot ID %s", contract.AnnotationRebootAuthorized, a.bootID)
	if resume {
		msg += " (issued again: an earlier run was stopped before the node went down)"
	}
	a.recorder.Event(contract.NodeRef(a.nodeName), v1.EventTypeNormal, contract.ReasonRebooting, msg)
	logger.Info("Rebooting", "bootID", a.bootID, "resume", resume)
	if err := a.rebooter.Reboot(ctx); err != nil {
		if ctx.Err() != nil {
			return 0
		}
		a.metrics.error(ErrorReboot)
		delay := a.rebootFails.Step()
		a.nextAttempt = a.clock.Now().Add(delay)
		a.recorder.Eventf(contract.NodeRef(a.nodeName), v1.EventTypeWarning, contract.ReasonRebootFailed,
			"Reboot failed, retrying in %s: %v", delay.Round(time.Second), err)
		logger.Error(err, "Reboot failed; retrying", "retryIn", delay)
		return delay
	}
	a.issued = true
	a.metrics.rebootsIssued.Inc()
	logger.Info("Reboot requested; waiting for the node to go down", "bootID", a.bootID)
	return 0
}

func (a *agent) writeFailed(ctx context.Context, err error) time.Duration {
	a.metrics.error(ErrorAnnotationWrite)
	delay := a.writeFails.Step()
	klog.FromContext(ctx).Error(err, "Cannot write the rebooting annotation; retrying", "retryIn", delay)
	return delay
}

// setRebooting sets (value != nil) or removes nodereboot.io/rebooting with a
// merge patch of the node's metadata: the only annotation the detector
// writes. A non-empty rv makes the API server refuse the patch (409
// Conflict) if the node changed since that version.
func (a *agent) setRebooting(ctx context.Context, value *string, rv ...string) error {
	p := contract.Patch{Annotations: map[string]*string{contract.AnnotationRebooting: value}}
	if len(rv) > 0 {
		p.ResourceVersion = rv[0]
	}
	body, err := p.MergePatch()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := a.client.PatchNode(ctx, a.nodeName, types.MergePatchType, body); err != nil {
		return fmt.Errorf("patch annotation %s of node %s: %w", contract.AnnotationRebooting, a.nodeName, err)
	}
	return nil
}

// minPositive is the smaller of the positive durations, 0 if none.
func minPositive(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	default:
		return min(a, b)
	}
}
