package smoke

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/framework"
)

const ns = "smoke"

func TestEvictionRespectsPDBAndPodsMove(t *testing.T) {
	c := framework.StartCluster(t, framework.Options{Nodes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// What a user sees first: kubectl lists the simulated nodes as Ready.
	out, err := c.Kubectl(ctx, "get", "nodes", "--no-headers")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out, " Ready "); got != 3 {
		t.Fatalf("kubectl get nodes shows %d Ready nodes, want 3:\n%s", got, out)
	}

	if _, err := c.Kubectl(ctx, "create", "namespace", ns); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](4),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:   []corev1.Container{{Name: "web", Image: "registry.k8s.io/pause:3.10"}},
					NodeSelector: map[string]string{"type": "kwok"},
				},
			},
		},
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	if _, err := c.Client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPDBAllows(ctx, t, c, 1)

	// The node with the most replicas is the one we empty.
	pods := webPods(ctx, t, c)
	byNode := map[string][]string{}
	for _, p := range pods {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p.Name)
	}
	target := ""
	for node, names := range byNode {
		if target == "" || len(names) > len(byNode[target]) || (len(names) == len(byNode[target]) && node < target) {
			target = node
		}
	}
	if len(byNode[target]) < 2 {
		t.Fatalf("4 replicas on 3 nodes, yet no node has 2: %v", byNode)
	}
	t.Logf("replicas by node: %v; emptying %s", byNode, target)

	// Cordon every node, so the first evicted pod's replacement stays
	// Pending and the budget is used up: the second eviction must be refused.
	for i := range 3 {
		if _, err := c.Kubectl(ctx, "cordon", fmt.Sprintf("node-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	first, second := byNode[target][0], byNode[target][1]
	if err := evict(ctx, c, first); err != nil {
		t.Fatalf("first eviction, within the budget: %v", err)
	}
	err = evict(ctx, c, second)
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("second eviction beyond the budget: got %v, want 429 TooManyRequests", err)
	}
	t.Logf("eviction beyond the budget refused: %v", err)

	// Let the replacements land on the other nodes, then finish emptying.
	for i := range 3 {
		if name := fmt.Sprintf("node-%d", i); name != target {
			if _, err := c.Kubectl(ctx, "uncordon", name); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range byNode[target][1:] {
		waitPDBAllows(ctx, t, c, 1)
		if err := evict(ctx, c, name); err != nil {
			t.Fatalf("evict %s after the budget recovered: %v", name, err)
		}
	}
	waitPDBAllows(ctx, t, c, 1)
	for _, p := range webPods(ctx, t, c) {
		if p.Spec.NodeName == target {
			t.Errorf("pod %s still on the emptied node %s", p.Name, target)
		}
	}

	out, err = c.Kubectl(ctx, "describe", "node", target)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Unschedulable:      true") {
		t.Errorf("kubectl describe node %s does not show it cordoned:\n%s", target, out)
	}
}

func evict(ctx context.Context, c *framework.Cluster, pod string) error {
	return c.Client.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns},
	})
}

// webPods returns the live (not terminating) pods of the Deployment once all
// 4 replicas are running and ready.
func webPods(ctx context.Context, t *testing.T, c *framework.Cluster) []corev1.Pod {
	t.Helper()
	list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	var live []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

// waitPDBAllows watches the budget until it allows want disruptions with all
// 4 replicas healthy.
func waitPDBAllows(ctx context.Context, t *testing.T, c *framework.Cluster, want int32) {
	t.Helper()
	lw := framework.ConsistentListWatch(c.Client.PolicyV1().RESTClient(), "poddisruptionbudgets", ns, fields.OneTermEqualSelector("metadata.name", "web"))
	_, err := watchtools.UntilWithSync(ctx, lw, &policyv1.PodDisruptionBudget{}, nil, func(e watch.Event) (bool, error) {
		pdb, ok := e.Object.(*policyv1.PodDisruptionBudget)
		return ok && pdb.Status.DisruptionsAllowed == want && pdb.Status.CurrentHealthy == 4 && len(pdb.Status.DisruptedPods) == 0, nil
	})
	if err != nil {
		t.Fatalf("PDB never allowed %d disruption(s) with 4 healthy replicas: %v", want, err)
	}
}
