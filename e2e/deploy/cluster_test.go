package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/pkg/contract"
)

// nodeNameExtra is the user-info extra of a pod-bound token that names the
// pod's node.
const nodeNameExtra = "authentication.kubernetes.io/node-name"

// apply runs kubectl apply --server-side with one field manager, so that each
// variant replaces the fields of the previous one.
func apply(ctx context.Context, t *testing.T, c *framework.Cluster, args ...string) {
	t.Helper()
	out, err := c.Kubectl(ctx, append([]string{"apply", "--server-side", "--field-manager=nodereboot-install"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("applied %v:\n%s", args, strings.TrimSpace(out))
}

// applyManifests applies a rendered stream (helm template output).
func applyManifests(ctx context.Context, t *testing.T, c *framework.Cluster, manifests string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifests.yaml")
	if err := os.WriteFile(f, []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	apply(ctx, t, c, "-f", f)
}

// applyCRDs installs the Prometheus Operator's CRDs (testdata/crds) and waits
// until they are served.
func applyCRDs(ctx context.Context, t *testing.T, c *framework.Cluster) {
	t.Helper()
	apply(ctx, t, c, "-f", filepath.Join(root(t), "e2e", "deploy", "testdata", "crds"))
	// kubectl wait watches the CRDs' conditions.
	if out, err := c.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

// waitPolicyTypeChecked waits until the API server has type-checked the
// current generation of every admission policy, and fails on any warning (a
// CEL expression that does not compile or is ill-typed). It returns the
// detector's policy.
func waitPolicyTypeChecked(ctx context.Context, t *testing.T, c *framework.Cluster) *admissionregistrationv1.ValidatingAdmissionPolicy {
	t.Helper()
	var detector *admissionregistrationv1.ValidatingAdmissionPolicy
	for _, name := range policyNames {
		obj, err := framework.WaitFor(ctx, c.Client.AdmissionregistrationV1().RESTClient(), "validatingadmissionpolicies", "", name,
			&admissionregistrationv1.ValidatingAdmissionPolicy{}, func(o any) bool {
				p := o.(*admissionregistrationv1.ValidatingAdmissionPolicy)
				return p.Status.ObservedGeneration == p.Generation && p.Status.TypeChecking != nil
			})
		if err != nil {
			t.Fatal(err)
		}
		p := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy)
		for _, w := range p.Status.TypeChecking.ExpressionWarnings {
			t.Errorf("policy %s: %s: %s", name, w.FieldRef, w.Warning)
		}
		for _, cond := range p.Status.Conditions {
			if cond.Status != metav1.ConditionTrue {
				t.Errorf("policy %s: condition %s=%s: %s", name, cond.Type, cond.Status, cond.Message)
			}
		}
		if name == policyName {
			detector = p
		}
	}
	return detector
}

// waitWorkloads waits until the detector runs on every node and the
// controller has its replicas ready: the pods passed admission (Pod
// Security, priority classes) and kwok runs them.
func waitWorkloads(ctx context.Context, t *testing.T, c *framework.Cluster, nodes, replicas int32) {
	t.Helper()
	if _, err := framework.WaitFor(ctx, c.Client.AppsV1().RESTClient(), "daemonsets", systemNS, detectorSA, &appsv1.DaemonSet{}, func(o any) bool {
		ds := o.(*appsv1.DaemonSet)
		return ds.Status.ObservedGeneration == ds.Generation && ds.Status.DesiredNumberScheduled == nodes &&
			ds.Status.UpdatedNumberScheduled == nodes && ds.Status.NumberReady == nodes
	}); err != nil {
		t.Fatalf("detector DaemonSet: %v (kube-controller-manager log: %s)", err, c.ControllerManager.LogFile)
	}
	if _, err := framework.WaitFor(ctx, c.Client.AppsV1().RESTClient(), "deployments", systemNS, controlSA, &appsv1.Deployment{}, func(o any) bool {
		d := o.(*appsv1.Deployment)
		return d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == replicas && d.Status.ReadyReplicas == replicas &&
			d.Status.Replicas == replicas
	}); err != nil {
		t.Fatalf("controller Deployment: %v", err)
	}
}

// probePod creates a pod on the node that runs as the detector's service
// account (kwok "runs" it) and returns a token bound to it, as the kubelet
// projects into the detector's pods.
func probePod(ctx context.Context, t *testing.T, c *framework.Cluster, name, node string) (token string) {
	t.Helper()
	pod, err := c.Client.CoreV1().Pods(systemNS).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:           node,
			ServiceAccountName: detectorSA,
			Tolerations:        []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers:         []corev1.Container{{Name: "probe", Image: "registry.k8s.io/pause:3.10"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lw := framework.ConsistentListWatch(c.Client.CoreV1().RESTClient(), "pods", systemNS, fields.OneTermEqualSelector("metadata.name", name))
	if _, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(e watch.Event) (bool, error) {
		p, ok := e.Object.(*corev1.Pod)
		return ok && e.Type != watch.Deleted && p.Status.Phase == corev1.PodRunning, nil
	}); err != nil {
		t.Fatalf("pod %s: %v", name, err)
	}
	tr, err := c.Client.CoreV1().ServiceAccounts(systemNS).CreateToken(ctx, detectorSA, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
			ExpirationSeconds: ptr.To[int64](3600),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// tokenClient is a clientset that authenticates with the token only.
func tokenClient(t *testing.T, c *framework.Cluster, token string) kubernetes.Interface {
	t.Helper()
	cfg := &rest.Config{Host: c.Server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData}, QPS: 50, Burst: 100}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// tokenKubeconfig writes a kubeconfig that authenticates with the token.
func tokenKubeconfig(t *testing.T, c *framework.Cluster, user, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: user}
	cfg.CurrentContext = "local"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func conditionPatch(typ, status string) []byte {
	return fmt.Appendf(nil, `{"status":{"conditions":[{"type":%q,"status":%q,"reason":"E2E","message":"e2e/deploy","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`,
		typ, status, time.Now().UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
}

// nodeWrite is one write to a node.
type nodeWrite struct {
	name        string
	node        string
	subresource string // "" or "status"
	patchType   types.PatchType
	body        []byte
}

func (w nodeWrite) do(ctx context.Context, cs kubernetes.Interface) error {
	var sub []string
	if w.subresource != "" {
		sub = []string{w.subresource}
	}
	_, err := cs.CoreV1().Nodes().Patch(ctx, w.node, w.patchType, w.body, metav1.PatchOptions{}, sub...)
	return err
}

func annotationPatch(k string, v *string) []byte {
	if v == nil {
		return fmt.Appendf(nil, `{"metadata":{"annotations":{%q:null}}}`, k)
	}
	return fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, k, *v)
}

// wantAllowed and wantDenied run writes and check the outcome. A denial
// must come from the admission policy (not RBAC) with the given message.
func wantAllowed(ctx context.Context, t *testing.T, cs kubernetes.Interface, w nodeWrite) {
	t.Helper()
	if err := w.do(ctx, cs); err != nil {
		t.Errorf("%s: %v, want it allowed", w.name, err)
	}
}

func wantDenied(ctx context.Context, t *testing.T, cs kubernetes.Interface, w nodeWrite, msg string) {
	t.Helper()
	wantDeniedBy(ctx, t, cs, w, msg, policyName)
}

// wantDeniedBy: the write is refused by one of the policies (a write that
// two policies refuse is reported by one of them) with msg.
func wantDeniedBy(ctx context.Context, t *testing.T, cs kubernetes.Interface, w nodeWrite, msg string, policies ...string) {
	t.Helper()
	err := w.do(ctx, cs)
	if err == nil {
		t.Errorf("%s: allowed, want denied by %v (%q)", w.name, policies, msg)
		return
	}
	for _, p := range policies {
		if (apierrors.IsForbidden(err) || apierrors.IsInvalid(err)) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+p+"'") && strings.Contains(err.Error(), msg) {
			return
		}
	}
	t.Errorf("%s: %v; want 403 from one of %v with %q", w.name, err, policies, msg)
}

// waitPolicyEnforced waits until the API server's admission plugin enforces
// the policy as applied: the policy reaches it through an informer, after
// the apply returned and after its type check. The probes are dry-run
// requests (admission runs, nothing is written) with the token of a detector
// pod on node-0: writing node-1 must be denied, and writing node-0's
// condition allowed or denied as ownsCondition says.
func waitPolicyEnforced(ctx context.Context, t *testing.T, c *framework.Cluster, token string, ownsCondition bool) {
	t.Helper()
	det := tokenClient(t, c, token)
	nodeCfg, err := c.NodeConfig("node-1")
	if err != nil {
		t.Fatal(err)
	}
	kubelet, err := kubernetes.NewForConfig(nodeCfg)
	if err != nil {
		t.Fatal(err)
	}
	dryRun := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, errOther := det.CoreV1().Nodes().Patch(ctx, "node-1", types.MergePatchType,
			annotationPatch(contract.AnnotationRebooting, ptr.To("probe")), dryRun)
		_, errOwn := det.CoreV1().Nodes().Patch(ctx, "node-0", types.StrategicMergePatchType,
			conditionPatch(contract.DefaultConditionType, "Unknown"), dryRun, "status")
		_, errCtl := kubelet.CoreV1().Nodes().Patch(ctx, "node-1", types.MergePatchType,
			annotationPatch(contract.AnnotationState, ptr.To("Draining")), dryRun)
		_, errEv := det.CoreV1().Events("default").Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe."},
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "node-1", UID: "node-1"}, Reason: "Probe", Type: corev1.EventTypeNormal},
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		last = fmt.Sprintf("node-1: %v; node-0 condition: %v; kubelet's state: %v; event about node-1: %v", errOther, errOwn, errCtl, errEv)
		return errOther != nil && (errOwn == nil) == ownsCondition &&
			errCtl != nil && strings.Contains(errCtl.Error(), controllerPolicy) && errEv != nil && strings.Contains(errEv.Error(), eventsPolicy), nil
	})
	if err != nil {
		t.Fatalf("the policy is not enforced as applied (owns condition: %v): %v; last probe: %s", ownsCondition, err, last)
	}
}

var (
	detectorBinOnce sync.Once
	detectorBinPath string
	detectorBinErr  error
)

// detectorBinary builds nodereboot-detector from this checkout.
func detectorBinary(t *testing.T) string {
	t.Helper()
	detectorBinOnce.Do(func() {
		bins, err := framework.BuildBinaries("", "nodereboot-detector")
		if err != nil {
			detectorBinErr = err
			return
		}
		detectorBinPath = bins.Path("nodereboot-detector")
	})
	if detectorBinErr != nil {
		t.Fatal(detectorBinErr)
	}
	return detectorBinPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if detectorBinPath != "" {
		_ = os.RemoveAll(filepath.Dir(detectorBinPath))
	}
	os.Exit(code)
}

func hasCondition(n *corev1.Node, typ string, status corev1.ConditionStatus) bool {
	for _, c := range n.Status.Conditions {
		if string(c.Type) == typ {
			return c.Status == status
		}
	}
	return false
}

// checkPolicy exercises the admission policy on the live API server with a
// token bound to a pod on node-0: its own node's condition and rebooting
// annotation pass, everything else is denied by the policy. ownsCondition
// is false in the node-problem-detector setup.
func checkPolicy(ctx context.Context, t *testing.T, c *framework.Cluster, token string, ownsCondition bool) {
	t.Helper()
	det := tokenClient(t, c, token)
	own, other := "node-0", "node-1"
	yes := "0b6e3c9c-0000-4000-8000-000000000000" // a boot ID
	rebooting := contract.AnnotationRebooting
	merge, smp := types.MergePatchType, types.StrategicMergePatchType

	if ownsCondition {
		wantAllowed(ctx, t, det, nodeWrite{"own condition", own, "status", smp, conditionPatch(contract.DefaultConditionType, "True")})
		if n, err := c.Client.CoreV1().Nodes().Get(ctx, own, metav1.GetOptions{}); err != nil || !hasCondition(n, contract.DefaultConditionType, corev1.ConditionTrue) {
			t.Errorf("the allowed condition write is not on %s (%v)", own, err)
		}
		wantAllowed(ctx, t, det, nodeWrite{"own condition False", own, "status", smp, conditionPatch(contract.DefaultConditionType, "False")})
	} else {
		wantDenied(ctx, t, det, nodeWrite{"own condition (NPD owns it)", own, "status", smp, conditionPatch(contract.DefaultConditionType, "True")},
			"may change no node condition but (none)")
	}
	wantAllowed(ctx, t, det, nodeWrite{"own rebooting annotation", own, "", merge, annotationPatch(rebooting, &yes)})
	wantAllowed(ctx, t, det, nodeWrite{"own rebooting annotation removed", own, "", merge, annotationPatch(rebooting, nil)})

	otherNode := "the detector of node " + own + " may not write node " + other
	wantDenied(ctx, t, det, nodeWrite{"other node's condition", other, "status", smp, conditionPatch(contract.DefaultConditionType, "True")}, otherNode)
	wantDenied(ctx, t, det, nodeWrite{"other node's rebooting annotation", other, "", merge, annotationPatch(rebooting, &yes)}, otherNode)
	wantDenied(ctx, t, det, nodeWrite{"other node's label", other, "", merge, []byte(`{"metadata":{"labels":{"e2e":"x"}}}`)}, otherNode)

	wantDenied(ctx, t, det, nodeWrite{"own label", own, "", merge, []byte(`{"metadata":{"labels":{"e2e":"x"}}}`)}, "labels")
	wantDenied(ctx, t, det, nodeWrite{"own label removed", own, "", merge, []byte(`{"metadata":{"labels":{"type":null}}}`)}, "labels")
	wantDenied(ctx, t, det, nodeWrite{"cordon", own, "", merge, []byte(`{"spec":{"unschedulable":true}}`)}, "spec")
	wantDenied(ctx, t, det, nodeWrite{"taint", own, "", merge, []byte(`{"spec":{"taints":[{"key":"e2e","effect":"NoSchedule"}]}}`)}, "spec")
	// Both the detector's and the controller's policy refuse these.
	wantDeniedBy(ctx, t, det, nodeWrite{"self-authorize", own, "", merge, annotationPatch(contract.AnnotationRebootAuthorized, &yes)},
		contract.AnnotationRebootAuthorized, policyName, controllerPolicy)
	wantDeniedBy(ctx, t, det, nodeWrite{"controller's state", own, "", merge, annotationPatch(contract.AnnotationState, ptr.To("Failed"))},
		contract.AnnotationState, policyName, controllerPolicy)
	wantDenied(ctx, t, det, nodeWrite{"rebooting not a boot ID", own, "", merge, annotationPatch(rebooting, ptr.To("e2e"))}, "must be a boot ID")
	checkEventsPolicy(ctx, t, det, own, other)
	wantDenied(ctx, t, det, nodeWrite{"somebody's annotation removed", own, "", merge, annotationPatch(framework.KwokNodeAnnotation, nil)},
		"changed: "+framework.KwokNodeAnnotation)
	wantDenied(ctx, t, det, nodeWrite{"finalizer", own, "", merge, []byte(`{"metadata":{"finalizers":["e2e/x"]}}`)}, "finalizers")
	wantDenied(ctx, t, det, nodeWrite{"Ready condition", own, "status", smp, conditionPatch("Ready", "False")}, "may change no node condition but")
	wantDenied(ctx, t, det, nodeWrite{"another condition", own, "status", smp, conditionPatch("KernelDeadlock", "True")}, "may change no node condition but")
	wantDenied(ctx, t, det, nodeWrite{"boot ID", own, "status", merge, []byte(`{"status":{"nodeInfo":{"bootID":"e2e-fake"}}}`)}, "status field")
	wantDenied(ctx, t, det, nodeWrite{"addresses", own, "status", merge, []byte(`{"status":{"addresses":[{"type":"InternalIP","address":"10.9.9.9"}]}}`)}, "status field")
}

// checkEventsPolicy: the detector of own records events about own, in
// namespace default, and no other.
func checkEventsPolicy(ctx context.Context, t *testing.T, det kubernetes.Interface, own, other string) {
	t.Helper()
	event := func(node string) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: node + "."},
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: node, UID: types.UID(node)},
			Reason:         "E2E", Message: "e2e/deploy", Type: corev1.EventTypeNormal, Count: 1,
			FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now()}
	}
	if _, err := det.CoreV1().Events("default").Create(ctx, event(own), metav1.CreateOptions{}); err != nil {
		t.Errorf("the detector's event about its node: %v", err)
	}
	_, err := det.CoreV1().Events("default").Create(ctx, event(other), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+eventsPolicy+"'") {
		t.Errorf("the detector's event about another node: %v, want 403 from %s", err, eventsPolicy)
	}
}

// checkControllerPolicy: the controller's service account may write its
// annotations; a node's own identity (a kubelet) may not, but may abort.
func checkControllerPolicy(ctx context.Context, t *testing.T, c *framework.Cluster) {
	t.Helper()
	_, cfg, err := c.ServiceAccountKubeconfig(ctx, systemNS, controlSA)
	if err != nil {
		t.Fatal(err)
	}
	ctl := tokenClient(t, c, cfg.BearerToken)
	nodeCfg, err := c.NodeConfig("node-1")
	if err != nil {
		t.Fatal(err)
	}
	kubelet, err := kubernetes.NewForConfig(nodeCfg)
	if err != nil {
		t.Fatal(err)
	}
	merge := types.MergePatchType
	wantAllowed(ctx, t, ctl, nodeWrite{"controller sets state", "node-1", "", merge, annotationPatch(contract.AnnotationState, ptr.To("Failed"))})
	wantDeniedBy(ctx, t, kubelet, nodeWrite{"kubelet sets reboot-authorized", "node-1", "", merge, annotationPatch(contract.AnnotationRebootAuthorized, ptr.To("x"))},
		"may set "+contract.AnnotationRebootAuthorized, controllerPolicy)
	wantAllowed(ctx, t, kubelet, nodeWrite{"kubelet aborts", "node-1", "", merge, annotationPatch(contract.AnnotationState, nil)})
}

// TestKustomizeInstall applies the base and every component server-side to
// the local control plane and exercises the admission policy and RBAC.
func TestKustomizeInstall(t *testing.T) {
	t.Parallel() // its own cluster
	c := framework.StartCluster(t, framework.Options{Nodes: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	applyCRDs(ctx, t, c)
	apply(ctx, t, c, "-k", filepath.Join(root(t), "deploy"))
	waitPolicyTypeChecked(ctx, t, c)
	waitWorkloads(ctx, t, c, 2, 2)
	token := probePod(ctx, t, c, "probe-node-0", "node-0")
	waitPolicyEnforced(ctx, t, c, token, true)

	t.Run("token names its node", func(t *testing.T) {
		r, err := tokenClient(t, c, token).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u := r.Status.UserInfo
		if u.Username != "system:serviceaccount:"+systemNS+":"+detectorSA || len(u.Extra[nodeNameExtra]) != 1 || u.Extra[nodeNameExtra][0] != "node-0" {
			t.Fatalf("user %q extra %v; want the detector's service account with %s=[node-0]", u.Username, u.Extra, nodeNameExtra)
		}
	})

	t.Run("admission policy", func(t *testing.T) {
		checkPolicy(ctx, t, c, token, true)
		checkControllerPolicy(ctx, t, c)
	})

	t.Run("admission policy fails closed", func(t *testing.T) {
		// A token not bound to a pod names no node.
		_, cfg, err := c.ServiceAccountKubeconfig(ctx, systemNS, detectorSA)
		if err != nil {
			t.Fatal(err)
		}
		wantDenied(ctx, t, tokenClient(t, c, cfg.BearerToken), nodeWrite{"unbound token", "node-0", "", types.MergePatchType,
			annotationPatch(contract.AnnotationRebooting, ptr.To("x"))}, "names no node")
	})

	t.Run("admission policy only matches the detector", func(t *testing.T) {
		_, cfg, err := c.ServiceAccountKubeconfig(ctx, systemNS, controlSA)
		if err != nil {
			t.Fatal(err)
		}
		ctl := tokenClient(t, c, cfg.BearerToken)
		wantAllowed(ctx, t, ctl, nodeWrite{"controller annotates", "node-1", "", types.MergePatchType, annotationPatch("e2e/scoped", ptr.To("yes"))})
		wantAllowed(ctx, t, ctl, nodeWrite{"controller cleans up", "node-1", "", types.MergePatchType, annotationPatch("e2e/scoped", nil)})
	})

	t.Run("real detector through the policy", func(t *testing.T) {
		testRealDetector(ctx, t, c, token)
	})

	t.Run("RBAC", func(t *testing.T) {
		testRBAC(ctx, t, c, token)
	})

	t.Run("controller meets Pod Security restricted", func(t *testing.T) {
		testControllerRestricted(ctx, t, c)
	})

	t.Run("another namespace", func(t *testing.T) {
		// kustomize's namespace: moves every namespaced object and the RBAC
		// subjects; it also stamps the namespace on the cluster-scoped
		// policy objects, which the API server ignores. Dry run: the
		// cluster keeps the install in nodereboot-system.
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "nodereboot-alt"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		out, err := c.Kubectl(ctx, "apply", "--server-side", "--dry-run=server", "--field-manager=nodereboot-install", "-o", "yaml", "-k", overlayIn(t, "nodereboot-alt"))
		if err != nil {
			t.Fatal(err)
		}
		var objs []*unstructured.Unstructured
		for _, o := range decode(t, out) {
			if o.GetKind() != "List" {
				objs = append(objs, o)
				continue
			}
			items, _, _ := unstructured.NestedSlice(o.Object, "items")
			for _, it := range items {
				objs = append(objs, &unstructured.Unstructured{Object: it.(map[string]any)})
			}
		}
		if len(objs) != len(decode(t, mustKustomize(t))) {
			t.Fatalf("the dry run returned %d objects, the base has %d", len(objs), len(decode(t, mustKustomize(t))))
		}
		for _, u := range objs {
			if u.GetNamespace() == systemNS {
				t.Errorf("%s stays in %s", key(u), systemNS)
			}
			if strings.HasPrefix(u.GetKind(), "ValidatingAdmissionPolicy") && u.GetNamespace() != "" {
				t.Errorf("the API server keeps a namespace on %s", key(u))
			}
			if u.GetKind() == "ClusterRoleBinding" {
				subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
				ns, _, _ := unstructured.NestedString(subjects[0].(map[string]any), "namespace")
				if ns != "nodereboot-alt" {
					t.Errorf("%s: subject namespace %q", key(u), ns)
				}
			}
		}
	})

	t.Run("components", func(t *testing.T) {
		for _, comps := range [][]string{{"reboot-signal"}, {"reboot-dbus"}, {"prometheus"}, {"reboot-signal", "node-problem-detector"}, {"node-problem-detector"}} {
			apply(ctx, t, c, "-k", overlay(t, comps...))
			p := waitPolicyTypeChecked(ctx, t, c)
			npd := comps[len(comps)-1] == "node-problem-detector"
			waitPolicyEnforced(ctx, t, c, token, !npd)
			ds, err := c.Client.AppsV1().DaemonSets(systemNS).Get(ctx, detectorSA, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			o := parseDetector(t, ds.Spec.Template.Spec.Containers[0].Args)
			// Detection is the sentinel container's (none with NPD).
			detects := len(ds.Spec.Template.Spec.Containers) == 2 && ds.Spec.Template.Spec.Containers[1].Name == "sentinel"
			if detects == npd || o.Detection || (comps[0] == "reboot-signal") != (o.RebootMethod == "signal") || (comps[0] == "reboot-dbus") != (o.RebootMethod == "dbus") {
				t.Errorf("%v: the applied DaemonSet has reboot-method=%s detection=%v, a sentinel container: %v", comps, o.RebootMethod, o.Detection, detects)
			}
			if got := p.Spec.Variables[0]; got.Name != "ownedConditions" || (got.Expression == "[]") != npd {
				t.Errorf("%v: applied policy variable %s = %s", comps, got.Name, got.Expression)
			}
		}
		// The last apply was node-problem-detector: the detector may write
		// no condition any more, still its annotation.
		checkPolicy(ctx, t, c, token, false)
		if _, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "nodereboot-npd-reboot-required", metav1.GetOptions{}); err != nil {
			t.Errorf("NPD ConfigMap: %v", err)
		}
		// And back to the base: the condition is the detector's again.
		apply(ctx, t, c, "-k", filepath.Join(root(t), "deploy"))
		waitPolicyTypeChecked(ctx, t, c)
		waitPolicyEnforced(ctx, t, c, token, true)
		checkPolicy(ctx, t, c, token, true)
	})
}

// testRealDetector runs the detector binary with the pod-bound token of
// node-0: its condition write and its rebooting annotation pass the policy.
func testRealDetector(ctx context.Context, t *testing.T, c *framework.Cluster, token string) {
	node, err := c.Client.CoreV1().Nodes().Get(ctx, "node-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bootID := node.Status.NodeInfo.BootID
	dir := t.TempDir()
	runDir := filepath.Join(dir, "run")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(runDir, "reboot-required"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "boot_id"), []byte(bootID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := framework.NewProcess("detector-node-0", detectorBinary(t), []string{
		"--kubeconfig=" + tokenKubeconfig(t, c, "detector-node-0", token),
		"--node-name=node-0",
		"--sentinel=" + filepath.Join(runDir, "reboot-required"),
		"--boot-id-file=" + filepath.Join(dir, "boot_id"),
		"--reboot-method=command", "--reboot-command=true", "--host-mount-namespace=false",
		"--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:0", "-v=2",
	}, c.LogDir)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(10 * time.Second)

	if _, err := c.WaitForNode(ctx, "node-0", func(n *corev1.Node) bool {
		return hasCondition(n, contract.DefaultConditionType, corev1.ConditionTrue)
	}); err != nil {
		t.Fatalf("the detector's condition: %v (log %s)", err, p.LogFile)
	}
	// The controller's whole authorization, as the admin plays it: the
	// detector reboots on nothing less.
	authz := fmt.Appendf(nil, `{"spec":{"unschedulable":true},"metadata":{"annotations":{%q:%q,%q:%q,%q:%q}}}`,
		contract.AnnotationRebootAuthorized, bootID, contract.AnnotationState, contract.StateAuthorized,
		contract.AnnotationStateReason, contract.AuthorizedReason(bootID))
	if _, err := c.Client.CoreV1().Nodes().Patch(ctx, "node-0", types.MergePatchType, authz, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForNode(ctx, "node-0", func(n *corev1.Node) bool {
		return n.Annotations[contract.AnnotationRebooting] == bootID
	}); err != nil {
		t.Fatalf("the detector's rebooting annotation: %v (log %s)", err, p.LogFile)
	}
	// Leave node-0 as the other subtests expect it.
	if _, err := c.Client.CoreV1().Nodes().Patch(ctx, "node-0", types.MergePatchType,
		fmt.Appendf(nil, `{"spec":{"unschedulable":false},"metadata":{"annotations":{%q:null,%q:null,%q:null,%q:null}}}`,
			contract.AnnotationRebootAuthorized, contract.AnnotationRebooting, contract.AnnotationState, contract.AnnotationStateReason),
		metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// canI asks the API server (SubjectAccessReview through kubectl auth can-i)
// whether a service account may do something.
func canI(ctx context.Context, t *testing.T, c *framework.Cluster, sa string, args ...string) bool {
	t.Helper()
	out, err := c.Kubectl(ctx, append([]string{"auth", "can-i", "--as=system:serviceaccount:" + systemNS + ":" + sa}, args...)...)
	for _, line := range strings.Split(out, "\n") { // past any warning
		switch strings.TrimSpace(line) {
		case "yes":
			return true
		case "no":
			return false
		}
	}
	t.Fatalf("kubectl auth can-i %v: %q (%v)", args, out, err)
	return false
}

func testRBAC(ctx context.Context, t *testing.T, c *framework.Cluster, detectorToken string) {
	for _, tc := range []struct {
		sa   string
		args []string
		want bool
	}{
		{detectorSA, []string{"get", "secrets", "-A"}, false},
		{detectorSA, []string{"list", "secrets", "-n", systemNS}, false},
		{detectorSA, []string{"patch", "nodes"}, true},
		{detectorSA, []string{"patch", "nodes", "--subresource=status"}, true},
		{detectorSA, []string{"update", "nodes"}, false},
		{detectorSA, []string{"delete", "nodes"}, false},
		{detectorSA, []string{"create", "pods", "--subresource=eviction", "-A"}, false},
		{detectorSA, []string{"list", "pods", "-A"}, false},
		{controlSA, []string{"get", "secrets", "-A"}, false},
		{controlSA, []string{"list", "secrets", "-n", systemNS}, false},
		{controlSA, []string{"create", "pods", "--subresource=eviction", "-A"}, true},
		{controlSA, []string{"delete", "pods", "-A"}, false},
		{controlSA, []string{"create", "pods", "--subresource=exec", "-A"}, false},
		{controlSA, []string{"patch", "nodes"}, true},
		{controlSA, []string{"patch", "nodes", "--subresource=status"}, true}, // the lifecycle conditions
		{controlSA, []string{"update", "nodes", "--subresource=status"}, false},
		{controlSA, []string{"update", "nodes"}, false},
		{controlSA, []string{"update", "leases/nodereboot-controller", "-n", systemNS}, true},
		{controlSA, []string{"update", "leases/kube-scheduler", "-n", "kube-system"}, false},
		// The slot record: only it, but create cannot be limited by name.
		{controlSA, []string{"update", "configmaps/nodereboot-slots", "-n", systemNS}, true},
		{controlSA, []string{"get", "configmaps/nodereboot-slots", "-n", systemNS}, true},
		{controlSA, []string{"update", "configmaps/other", "-n", systemNS}, false},
		{controlSA, []string{"delete", "configmaps/nodereboot-slots", "-n", systemNS}, false},
		{controlSA, []string{"create", "configmaps", "-n", systemNS}, true},
		{controlSA, []string{"create", "configmaps", "-n", "default"}, false},
	} {
		if got := canI(ctx, t, c, tc.sa, tc.args...); got != tc.want {
			t.Errorf("%s can-i %v: %v, want %v", tc.sa, tc.args, got, tc.want)
		}
	}

	// The permission that makes the controller the controller for the
	// admission policy nodereboot-controller-annotations: no API behind
	// it, so asked with a SubjectAccessReview, as the policy's authorizer
	// check does, and listed by kubectl auth can-i --list.
	for sa, want := range map[string]bool{controlSA: true, detectorSA: false} {
		sar, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "system:serviceaccount:" + systemNS + ":" + sa, Groups: []string{"system:serviceaccounts"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Group: "nodereboot.io", Resource: "nodes", Verb: "manage"},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != want {
			t.Errorf("%s may manage nodes.nodereboot.io: %v, want %v", sa, sar.Status.Allowed, want)
		}
	}
	out, err := c.Kubectl(ctx, "auth", "can-i", "--list", "--as=system:serviceaccount:"+systemNS+":"+controlSA)
	if err != nil || !regexp.MustCompile(`(?m)^nodes\.nodereboot\.io\s+\[\]\s+\[\]\s+\[manage\]`).MatchString(out) {
		t.Errorf("kubectl auth can-i --list does not show manage on nodes.nodereboot.io (%v):\n%s", err, out)
	}

	// Real requests with service-account tokens.
	det := tokenClient(t, c, detectorToken)
	if _, err := det.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("detector lists secrets: %v, want Forbidden", err)
	}
	if _, err := det.CoreV1().Nodes().Get(ctx, "node-0", metav1.GetOptions{}); err != nil {
		t.Errorf("detector gets its node: %v", err)
	}
	_, cfg, err := c.ServiceAccountKubeconfig(ctx, systemNS, controlSA)
	if err != nil {
		t.Fatal(err)
	}
	ctl := tokenClient(t, c, cfg.BearerToken)
	if _, err := ctl.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("controller lists secrets: %v, want Forbidden", err)
	}
	if _, err := ctl.CoreV1().Secrets(systemNS).Get(ctx, "any", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("controller gets a secret: %v, want Forbidden", err)
	}
	if _, err := ctl.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("controller lists nodes: %v", err)
	}
}

// testControllerRestricted creates the controller's pod (dry run) in a
// namespace that enforces the Pod Security "restricted" level.
func testControllerRestricted(ctx context.Context, t *testing.T, c *framework.Cluster) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "restricted", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted"}}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForServiceAccount(ctx, "restricted", "default"); err != nil {
		t.Fatal(err)
	}
	dep, err := c.Client.AppsV1().Deployments(systemNS).Get(ctx, controlSA, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := dep.Spec.Template.Spec.DeepCopy()
	spec.ServiceAccountName = "default"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "controller"}, Spec: *spec}
	if _, err := c.Client.CoreV1().Pods("restricted").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("the controller's pod in a restricted namespace: %v", err)
	}
	// And the detector's needs the privileged level (it would be refused).
	ds, err := c.Client.AppsV1().DaemonSets(systemNS).Get(ctx, detectorSA, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dspec := ds.Spec.Template.Spec.DeepCopy()
	dspec.ServiceAccountName = "default"
	if _, err := c.Client.CoreV1().Pods("restricted").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "detector"}, Spec: *dspec},
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Errorf("the detector's pod in a restricted namespace: %v, want Forbidden", err)
	}
}
