package framework

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod the node-lifecycle controller marked unready (Ready=False, the
// condition's reason kept, and kwok's is empty) is made Ready again, as a
// kubelet's status manager would; a pod made unready with a reason, as a
// test does on purpose, is left alone.
func TestPodReadyAgainAfterTheNodeControllerMarkedIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := StartCluster(t, Options{Logf: t.Logf, Nodes: 1})
	node := "node-0"
	marked := runningPod(ctx, t, c, "marked", node)
	test := runningPod(ctx, t, c, "on-purpose", node)

	// The test's pod first, with a reason; then the node controller's way:
	// the status flipped, the reason kept.
	setReady(ctx, t, c, test, corev1.ConditionFalse, "Test")
	setReady(ctx, t, c, marked, corev1.ConditionFalse, "")
	if _, err := waitPod(ctx, c, marked.Name, func(p *corev1.Pod) bool { return podReady(p) == corev1.ConditionTrue }); err != nil {
		t.Fatalf("the marked pod was not made Ready again: %v", err)
	}
	// Both became due at once (same stage delay); the one with a reason
	// was set first, so had kwok acted on it, it would show by now.
	p, err := c.Client.CoreV1().Pods("default").Get(ctx, test.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := podReady(p); got != corev1.ConditionFalse {
		t.Errorf("the pod made unready on purpose is Ready=%s", got)
	}
}

func runningPod(ctx context.Context, t *testing.T, c *Cluster, name, node string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := waitPod(ctx, c, name, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && podReady(p) == corev1.ConditionTrue
	})
	if err != nil {
		t.Fatalf("pod %s not running: %v", name, err)
	}
	return p
}

// setReady writes the pod's Ready condition as the node-lifecycle
// controller does (UpdateStatus, the other fields kept).
func setReady(ctx context.Context, t *testing.T, c *Cluster, pod *corev1.Pod, status corev1.ConditionStatus, reason string) {
	t.Helper()
	p, err := c.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			p.Status.Conditions[i].Status = status
			p.Status.Conditions[i].Reason = reason
		}
	}
	if _, err := c.Client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitPod(ctx context.Context, c *Cluster, name string, cond func(*corev1.Pod) bool) (*corev1.Pod, error) {
	obj, err := WaitFor(ctx, c.Client.CoreV1().RESTClient(), "pods", "default", name, &corev1.Pod{}, func(o any) bool { return cond(o.(*corev1.Pod)) })
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Pod), nil
}

func podReady(p *corev1.Pod) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}
