package gates

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodereboot/nodereboot/pkg/contract"
)

func cordonNode(name string, unschedulable bool, annotations map[string]string) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec:       v1.NodeSpec{Unschedulable: unschedulable},
	}
}

func TestCordonedByOthers(t *testing.T) {
	nodes := []*v1.Node{
		cordonNode("c-aks-upgrade", true, nil),
		cordonNode("a-schedulable", false, nil),
		cordonNode("b-ours", true, map[string]string{contract.AnnotationState: "Draining", contract.AnnotationCordonedByUs: "true"}),
		// An admin's cordon on a node nodereboot then took is in the
		// pipeline: the state decides, not cordoned-by-us.
		cordonNode("d-admin-then-ours", true, map[string]string{contract.AnnotationState: "Authorized"}),
		cordonNode("e-admin", true, map[string]string{contract.AnnotationLastReboot: "2026-11-30T10:00:00Z"}),
		// A state with any value (even invalid) is ours: the controller
		// resets it, it is not somebody else's cordon.
		cordonNode("f-invalid-state", true, map[string]string{contract.AnnotationState: ""}),
	}
	got := CordonedByOthers(nodes)
	if want := []string{"c-aks-upgrade", "e-admin"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("CordonedByOthers = %v, want %v", got, want)
	}
	if got := CordonedByOthers(nil); got != nil {
		t.Fatalf("no nodes: %v", got)
	}
}

func poolNode(name, pool, image, kubelet string) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	if pool != "" {
		n.Labels["kubernetes.azure.com/agentpool"] = pool
	}
	if image != "" {
		n.Labels["kubernetes.azure.com/node-image-version"] = image
	}
	n.Status.NodeInfo.KubeletVersion = kubelet
	return n
}

func TestPoolsInUpgrade(t *testing.T) {
	const pool, image = "kubernetes.azure.com/agentpool", "kubernetes.azure.com/node-image-version"
	for _, tc := range []struct {
		name  string
		nodes []*v1.Node
		want  []string
	}{
		{"one version per pool", []*v1.Node{
			poolNode("a0", "a", "img-1", "v1.33.2"), poolNode("a1", "a", "img-1", "v1.33.2"),
			poolNode("b0", "b", "img-2", "v1.33.1"),
		}, nil},
		{"node image upgrade half-way", []*v1.Node{
			poolNode("a0", "a", "img-2", "v1.33.2"), poolNode("a1", "a", "img-1", "v1.33.2"),
			poolNode("b0", "b", "img-1", "v1.33.2"),
		}, []string{"a"}},
		{"cluster upgrade: kubelets differ", []*v1.Node{
			poolNode("a0", "a", "img-1", "v1.34.1"), poolNode("a1", "a", "img-1", "v1.33.2"),
			poolNode("b0", "b", "img-1", "v1.34.1"), poolNode("b1", "b", "img-2", "v1.33.2"),
		}, []string{"a", "b"}},
		{"pools differ from each other, not within", []*v1.Node{
			poolNode("a0", "a", "img-1", "v1.33.2"), poolNode("b0", "b", "img-2", "v1.34.1"),
		}, nil},
		{"nodes outside pools and without versions", []*v1.Node{
			poolNode("x", "", "img-1", "v1.33.2"), poolNode("y", "", "img-2", "v1.34.1"),
			poolNode("a0", "a", "", ""), poolNode("a1", "a", "img-1", "v1.33.2"),
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PoolsInUpgrade(tc.nodes, pool, image); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("PoolsInUpgrade = %v, want %v", got, tc.want)
			}
		})
	}
	// Without a version label only the kubelets count.
	nodes := []*v1.Node{poolNode("a0", "a", "img-1", "v1"), poolNode("a1", "a", "img-2", "v1")}
	if got := PoolsInUpgrade(nodes, pool, ""); got != nil {
		t.Fatalf("no version label: %v", got)
	}
}
