package framework

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
)

// NodeTemplate returns the Node object that CreateNodes creates: kwok
// manages it, and it starts with a random boot ID, as a kubelet reports one.
func NodeTemplate(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Annotations: map[string]string{
				KwokNodeAnnotation:             "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
		Status: corev1.NodeStatus{
			NodeInfo: corev1.NodeSystemInfo{BootID: string(uuid.NewUUID())},
		},
	}
}

// CreateNodes creates simulated nodes and waits until kwok reports each Ready.
func (c *Cluster) CreateNodes(ctx context.Context, names ...string) error {
	for _, name := range names {
		if _, err := c.Client.CoreV1().Nodes().Create(ctx, NodeTemplate(name), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	for _, name := range names {
		if _, err := c.WaitForNode(ctx, name, NodeReady); err != nil {
			return fmt.Errorf("node %s: %w (kwok log: %s)", name, err, c.Kwok.LogFile)
		}
	}
	return nil
}

// NodeReady reports whether the node's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitForNode watches the node until cond holds and returns it, or fails at
// ctx's deadline.
func (c *Cluster) WaitForNode(ctx context.Context, name string, cond func(*corev1.Node) bool) (*corev1.Node, error) {
	obj, err := waitForObject(ctx, c.Client.CoreV1().RESTClient(), "nodes", "", name, &corev1.Node{}, func(o runtime.Object) bool {
		return cond(o.(*corev1.Node))
	})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Node), nil
}

// WaitForServiceAccount waits until the service account exists.
func (c *Cluster) WaitForServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	obj, err := waitForObject(ctx, c.Client.CoreV1().RESTClient(), "serviceaccounts", namespace, name, &corev1.ServiceAccount{}, func(runtime.Object) bool { return true })
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.ServiceAccount), nil
}

// ConsistentListWatch returns a ListWatch whose lists are consistent reads
// (resourceVersion ""), not the possibly stale "any version" a reflector asks
// for by default: a test waiting for a change it just made must not be
// answered by the state before it.
func ConsistentListWatch(rc rest.Interface, resource, namespace string, selector fields.Selector) *cache.ListWatch {
	lw := cache.NewListWatchFromClient(rc, resource, namespace, selector)
	list := lw.ListWithContextFunc
	lw.ListWithContextFunc = func(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
		options.ResourceVersion, options.ResourceVersionMatch = "", ""
		return list(ctx, options)
	}
	lw.ListFunc = nil //lint:ignore SA1019 the deprecated field must not bypass the consistent list
	return lw
}

// WaitFor lists and watches one named object of any resource until cond
// holds, and returns it.
func WaitFor(ctx context.Context, rc rest.Interface, resource, namespace, name string, obj runtime.Object, cond func(any) bool) (runtime.Object, error) {
	return waitForObject(ctx, rc, resource, namespace, name, obj, func(o runtime.Object) bool { return cond(o) })
}

// waitForObject lists and watches one named object until cond holds.
func waitForObject(ctx context.Context, rc rest.Interface, resource, namespace, name string, obj runtime.Object, cond func(runtime.Object) bool) (runtime.Object, error) {
	lw := ConsistentListWatch(rc, resource, namespace, fields.OneTermEqualSelector("metadata.name", name))
	ev, err := watchtools.UntilWithSync(ctx, lw, obj, nil, func(e watch.Event) (bool, error) {
		if e.Type == watch.Deleted {
			return false, nil
		}
		return cond(e.Object), nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for %s %s/%s: %w", resource, namespace, name, err)
	}
	return ev.Object, nil
}

// ServiceAccountKubeconfig makes sure the namespace and service account
// exist and writes a kubeconfig that authenticates as that service account
// with a token from the TokenRequest API, so that tests exercise RBAC as the
// binaries do in a cluster. It returns the file's path and the rest.Config.
func (c *Cluster) ServiceAccountKubeconfig(ctx context.Context, namespace, name string) (string, *rest.Config, error) {
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", nil, err
	}
	if _, err := c.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", nil, err
	}
	tr, err := c.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("token for %s/%s: %w", namespace, name, err)
	}
	path := filepath.Join(c.Dir, fmt.Sprintf("%s-%s.kubeconfig", namespace, name))
	if err := c.writeKubeconfig(path, "system:serviceaccount:"+namespace+":"+name, tr.Status.Token); err != nil {
		return "", nil, err
	}
	cfg := rest.CopyConfig(c.AdminConfig)
	cfg.BearerToken = tr.Status.Token
	cfg.UserAgent = ""
	return path, cfg, nil
}

// Kubectl runs bin/kubectl as the admin and returns its combined output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	return c.KubectlAs(ctx, c.AdminKubeconfig, args...)
}

// KubectlAs runs bin/kubectl with the given kubeconfig.
func (c *Cluster) KubectlAs(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.bin("kubectl"), append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %v: %w: %s", args, err, out.String())
	}
	return out.String(), nil
}
