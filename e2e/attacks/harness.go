package attacks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/nodereboot/nodereboot/e2e/framework"
	"github.com/nodereboot/nodereboot/e2e/nodesim"
)

// The install's admission policies (deploy/admission-policy*.yaml), before
// any kustomize renaming.
const (
	DetectorPolicy   = "nodereboot-detector-own-node"
	EventsPolicy     = "nodereboot-detector-own-events"
	ControllerPolicy = "nodereboot-controller-annotations"
	// ControllerStatusPolicy keeps the controller's status writes to the
	// lifecycle conditions.
	ControllerStatusPolicy = "nodereboot-controller-status"
)

// The attackers' names: a service account that may only patch nodes (and
// nodes/status), in a namespace of its own.
const (
	AttackerNamespace = "attackers"
	NodePatcher       = "node-patcher"
)

// Options choose the install.
type Options struct {
	// Nodes is the number of simulated nodes (node-0 …); default 3.
	Nodes int
	// NamePrefix, NameSuffix and Namespace rename the install with a
	// kustomize overlay of deploy/ (namePrefix, nameSuffix, namespace);
	// all empty: deploy/ itself.
	NamePrefix, NameSuffix, Namespace string
	// WithoutPolicies installs deploy/ without its four admission policies
	// (as on a cluster before Kubernetes 1.30, docs/install.md): a
	// kustomize `$patch: delete` of the six objects. For attacks that the
	// controller itself must hold.
	WithoutPolicies bool
}

// Install is nodereboot installed from deploy/ on a fresh local cluster.
type Install struct {
	Cluster *framework.Cluster
	// Namespace, ControllerSA and DetectorSA are the install's names after
	// renaming.
	Namespace, ControllerSA, DetectorSA string
	// Prefix and Suffix are the kustomize renames ("" for deploy/).
	Prefix, Suffix string
	// Nodes are the node names.
	Nodes []string

	// Label names the install in the results table ("deploy/", or the
	// renaming).
	Label string

	mu       sync.Mutex
	outcomes []Outcome
}

// installs are every Setup's installs, for WriteResults.
var installs struct {
	sync.Mutex
	list []*Install
}

// Name is a base object's name as the install renamed it.
func (in *Install) Name(base string) string { return in.Prefix + base + in.Suffix }

// ControllerUser and DetectorUser are the service accounts' usernames.
func (in *Install) ControllerUser() string {
	return "system:serviceaccount:" + in.Namespace + ":" + in.ControllerSA
}

// DetectorUser is the detector's service-account username.
func (in *Install) DetectorUser() string {
	return "system:serviceaccount:" + in.Namespace + ":" + in.DetectorSA
}

// Setup starts a cluster, installs nodereboot with `kubectl apply
// --server-side -k` (deploy/ or a renaming overlay of it), waits until the
// detector runs on every node and the controller's replicas are ready, and
// until the API server enforces the four admission policies as applied.
// The cluster stops when the test ends.
func Setup(t *testing.T, o Options) *Install {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	in := &Install{Namespace: "nodereboot-system", Prefix: o.NamePrefix, Suffix: o.NameSuffix}
	if o.Namespace != "" {
		in.Namespace = o.Namespace
	}
	in.ControllerSA, in.DetectorSA = in.Name("nodereboot-controller"), in.Name("nodereboot-detector")
	in.Label = "deploy/"
	if o.NamePrefix != "" || o.NameSuffix != "" || o.Namespace != "" {
		in.Label = fmt.Sprintf("deploy/ renamed (namePrefix %q, nameSuffix %q, namespace %q)", o.NamePrefix, o.NameSuffix, o.Namespace)
	}
	installs.Lock()
	installs.list = append(installs.list, in)
	installs.Unlock()
	for i := range o.Nodes {
		in.Nodes = append(in.Nodes, fmt.Sprintf("node-%d", i))
	}
	dir := kustomization(t, o)
	in.Cluster = framework.StartCluster(t, framework.Options{Nodes: o.Nodes})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := in.Cluster.Kubectl(ctx, "apply", "--server-side", "--field-manager=nodereboot-install", "-k", dir); err != nil {
		t.Fatalf("install: %v", err)
	} else {
		t.Logf("installed %s:\n%s", dir, strings.TrimSpace(out))
	}
	in.waitWorkloads(ctx, t)
	if o.WithoutPolicies {
		in.Label += " without its admission policies"
		return in
	}
	in.waitTypeChecked(ctx, t)
	in.waitEnforced(ctx, t)
	return in
}

// kustomization returns deploy/, or a temporary overlay that renames it.
func kustomization(t *testing.T, o Options) string {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(root, "deploy")
	if o.NamePrefix == "" && o.NameSuffix == "" && o.Namespace == "" && !o.WithoutPolicies {
		return base
	}
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, base) // kustomize refuses absolute paths
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\n", rel)
	for k, v := range map[string]string{"namePrefix": o.NamePrefix, "nameSuffix": o.NameSuffix, "namespace": o.Namespace} {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	if o.WithoutPolicies {
		b.WriteString("patches:\n")
		for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
			for _, name := range []string{DetectorPolicy, EventsPolicy, ControllerPolicy, ControllerStatusPolicy} {
				fmt.Fprintf(&b, "  - patch: |-\n      $patch: delete\n      apiVersion: admissionregistration.k8s.io/v1\n      kind: %s\n      metadata:\n        name: %s\n", kind, name)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (in *Install) waitWorkloads(ctx context.Context, t *testing.T) {
	t.Helper()
	c := in.Cluster
	n := int32(len(in.Nodes))
	if _, err := framework.WaitFor(ctx, c.Client.AppsV1().RESTClient(), "daemonsets", in.Namespace, in.Name("nodereboot-detector"), &appsv1.DaemonSet{}, func(o any) bool {
		ds := o.(*appsv1.DaemonSet)
		return ds.Status.ObservedGeneration == ds.Generation && ds.Status.DesiredNumberScheduled == n && ds.Status.NumberReady == n
	}); err != nil {
		t.Fatalf("detector DaemonSet: %v (kube-controller-manager log: %s)", err, c.ControllerManager.LogFile)
	}
	if _, err := framework.WaitFor(ctx, c.Client.AppsV1().RESTClient(), "deployments", in.Namespace, in.Name("nodereboot-controller"), &appsv1.Deployment{}, func(o any) bool {
		d := o.(*appsv1.Deployment)
		return d.Status.ObservedGeneration == d.Generation && d.Spec.Replicas != nil && d.Status.ReadyReplicas == *d.Spec.Replicas
	}); err != nil {
		t.Fatalf("controller Deployment: %v", err)
	}
}

// waitTypeChecked fails the test on any type-checking warning of the
// policies' CEL.
func (in *Install) waitTypeChecked(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, base := range []string{DetectorPolicy, EventsPolicy, ControllerPolicy, ControllerStatusPolicy} {
		name := in.Name(base)
		obj, err := framework.WaitFor(ctx, in.Cluster.Client.AdmissionregistrationV1().RESTClient(), "validatingadmissionpolicies", "", name,
			&admissionregistrationv1.ValidatingAdmissionPolicy{}, func(o any) bool {
				p := o.(*admissionregistrationv1.ValidatingAdmissionPolicy)
				return p.Status.ObservedGeneration == p.Generation && p.Status.TypeChecking != nil
			})
		if err != nil {
			t.Fatalf("policy %s: %v", name, err)
		}
		for _, w := range obj.(*admissionregistrationv1.ValidatingAdmissionPolicy).Status.TypeChecking.ExpressionWarnings {
			t.Errorf("policy %s: %s: %s", name, w.FieldRef, w.Warning)
		}
	}
}

// waitEnforced waits until the API server enforces the four policies: a
// policy reaches its admission plugin through informers, after the apply
// returned. The probes are dry-run writes (admission runs, nothing is
// stored) that each policy must refuse.
func (in *Install) waitEnforced(ctx context.Context, t *testing.T) {
	t.Helper()
	patcher := in.Client(t, in.PatcherConfig(ctx, t))
	det := in.Client(t, in.DetectorConfig(ctx, t, in.Nodes[0]))
	ctl := in.Client(t, in.ControllerConfig(ctx, t))
	dry := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}
	notReady := []byte(`{"status":{"conditions":[{"type":"Ready","status":"False","reason":"Probe","message":"probe"}]}}`)
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, errCtl := patcher.CoreV1().Nodes().Patch(ctx, in.Nodes[0], types.MergePatchType, AnnotationPatch("nodereboot.io/state", ptr.To("Draining")), dry)
		_, errDet := det.CoreV1().Nodes().Patch(ctx, in.Nodes[1], types.MergePatchType, AnnotationPatch("nodereboot.io/rebooting", ptr.To(FakeBootID)), dry)
		_, errEv := det.CoreV1().Events("kube-system").Create(ctx, NewNodeEvent(in.Nodes[0]), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		_, errStatus := ctl.CoreV1().Nodes().Patch(ctx, in.Nodes[0], types.StrategicMergePatchType, notReady, dry, "status")
		last = fmt.Sprintf("controller policy: %v; detector policy: %v; events policy: %v; controller status policy: %v", errCtl, errDet, errEv, errStatus)
		return DeniedBy(errCtl, in.Name(ControllerPolicy)) && DeniedBy(errDet, in.Name(DetectorPolicy)) && DeniedBy(errEv, in.Name(EventsPolicy)) &&
			DeniedBy(errStatus, in.Name(ControllerStatusPolicy)), nil
	})
	if err != nil {
		t.Fatalf("the admission policies are not enforced: %v; last probes: %s", err, last)
	}
}

// FakeBootID is a well-formed boot ID that no node has.
const FakeBootID = "0b6e3c9c-0000-4000-8000-000000000000"

// DeniedBy reports whether err is the API server's refusal by the named
// admission policy (403 Forbidden, or 422 Invalid for a value out of
// bounds).
func DeniedBy(err error, policy string) bool {
	return err != nil && (apierrors.IsForbidden(err) || apierrors.IsInvalid(err)) &&
		strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+policy+"'")
}

// Client is a clientset for a credential.
func (in *Install) Client(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// tokenConfig is a rest.Config with a bearer token and nothing else.
func (in *Install) tokenConfig(token string) *rest.Config {
	return &rest.Config{Host: in.Cluster.Server, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAData: in.Cluster.CAData}, QPS: 50, Burst: 100}
}

// ControllerConfig is the controller's credential: a token of its service
// account (TokenRequest API, one day).
func (in *Install) ControllerConfig(ctx context.Context, t testing.TB) *rest.Config {
	t.Helper()
	tr, err := in.Cluster.Client.CoreV1().ServiceAccounts(in.Namespace).CreateToken(ctx, in.ControllerSA, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("controller token: %v", err)
	}
	return in.tokenConfig(tr.Status.Token)
}

// DetectorConfig is the credential of the detector on node: a token of its
// service account bound to the DaemonSet's pod on that node, as the kubelet
// projects it (the API server adds the node's name to its user info).
func (in *Install) DetectorConfig(ctx context.Context, t testing.TB, node string) *rest.Config {
	t.Helper()
	pods, err := in.Cluster.Client.CoreV1().Pods(in.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/component=detector", FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("%d detector pods on %s, want 1", len(pods.Items), node)
	}
	pod := pods.Items[0]
	if pod.Spec.ServiceAccountName != in.DetectorSA {
		t.Fatalf("detector pod %s runs as %s, want %s", pod.Name, pod.Spec.ServiceAccountName, in.DetectorSA)
	}
	tr, err := in.Cluster.Client.CoreV1().ServiceAccounts(in.Namespace).CreateToken(ctx, in.DetectorSA, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
			ExpirationSeconds: ptr.To[int64](3600),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("detector token for %s: %v", node, err)
	}
	return in.tokenConfig(tr.Status.Token)
}

// PatcherConfig is the credential of a node agent: service account
// attackers/node-patcher, which may get, list, watch and patch nodes and
// patch nodes/status, and nothing else (created on first use).
func (in *Install) PatcherConfig(ctx context.Context, t testing.TB) *rest.Config {
	t.Helper()
	c := in.Cluster.Client
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "e2e-node-patcher"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
	}}
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-node-patcher"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: NodePatcher, Namespace: AttackerNamespace}}}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, cfg, err := in.Cluster.ServiceAccountKubeconfig(ctx, AttackerNamespace, NodePatcher)
	if err != nil {
		t.Fatal(err)
	}
	return in.tokenConfig(cfg.BearerToken)
}

// NodeConfig is node's own credential: system:node:<node> in group
// system:nodes (a client certificate), as its kubelet has.
func (in *Install) NodeConfig(t testing.TB, node string) *rest.Config {
	t.Helper()
	cfg, err := in.Cluster.NodeConfig(node)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// WriteKubeconfig writes a kubeconfig for a credential (token or client
// certificate), for running a binary with it.
func WriteKubeconfig(t testing.TB, cfg *rest.Config, user string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken, ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: user}
	kc.CurrentContext = "local"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// AnnotationPatch is a merge patch that sets an annotation (nil: removes
// it).
func AnnotationPatch(key string, value *string) []byte {
	if value == nil {
		return fmt.Appendf(nil, `{"metadata":{"annotations":{%q:null}}}`, key)
	}
	return fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, key, *value)
}

// NodeEvent is an event about a node, as the detector records it.
func NodeEvent(node string) *corev1.Event {
	now := metav1.Now()
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: node + "."},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: node, UID: types.UID(node)},
		Reason:         "E2EAttack", Message: "e2e/attacks", Type: corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "nodereboot-detector", Host: node},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
}

// NewNodeEvent is an event about a node with an eventTime (a "new" event),
// which the API server also accepts in kube-system.
func NewNodeEvent(node string) *corev1.Event {
	e := NodeEvent(node)
	e.EventTime = metav1.NowMicro()
	e.FirstTimestamp, e.LastTimestamp, e.Count = metav1.Time{}, metav1.Time{}, 0
	e.ReportingController, e.ReportingInstance, e.Action = "nodereboot-detector", node, "Reboot"
	return e
}

// Outcome is one attack's result, a row of docs/reliability.md's attacks
// table.
type Outcome struct {
	// Attack says what was tried; Who with which credential.
	Attack, Who string
	// Server is what the API server (or the controller) did, e.g.
	// "403 nodereboot-controller-annotations: …".
	Server string
	// Result is the verdict: "refused", "allowed (as documented)", ….
	Result string
}

// Record adds an outcome to the install's table.
func (in *Install) Record(o Outcome) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.outcomes = append(in.outcomes, o)
}

// Outcomes are the recorded outcomes, in order.
func (in *Install) Outcomes() []Outcome {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Outcome(nil), in.outcomes...)
}

// ServerAnswer says in a few words what the API server answered.
func ServerAnswer(err error) string {
	if err == nil {
		return "admitted"
	}
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		return "error: " + err.Error()
	}
	msg := se.Status().Message
	// "nodes "x" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'p' denied request: …"
	if i := strings.Index(msg, "ValidatingAdmissionPolicy '"); i >= 0 {
		rest := msg[i+len("ValidatingAdmissionPolicy '"):]
		policy, _, _ := strings.Cut(rest, "'")
		_, why, _ := strings.Cut(rest, "denied request: ")
		return fmt.Sprintf("%d by policy %s: %s", se.Status().Code, policy, why)
	}
	return fmt.Sprintf("%d: %s", se.Status().Code, msg)
}

// WriteResults writes the recorded outcomes of every install as a Markdown
// table to $NODEREBOOT_ATTACKS_RESULTS, when it is set (TestMain calls it
// after the tests).
func WriteResults(header string) error {
	path := os.Getenv("NODEREBOOT_ATTACKS_RESULTS")
	if path == "" {
		return nil
	}
	installs.Lock()
	list := append([]*Install(nil), installs.list...)
	installs.Unlock()
	sort.SliceStable(list, func(i, j int) bool { return list[i].Label < list[j].Label })
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("\n\n| install | attack | who | what the API server did | result |\n| --- | --- | --- | --- | --- |\n")
	for _, in := range list {
		for _, o := range in.Outcomes() {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(in.Label), cell(o.Attack), cell(o.Who), cell(o.Server), cell(o.Result))
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

var (
	binOnce sync.Once
	bins    *framework.Binaries
	binErr  error
)

// Binaries builds this checkout's nodereboot-controller and
// nodereboot-detector once per test binary ($NODEREBOOT_BINARIES: link
// prebuilt ones from that folder instead). RemoveBinaries deletes them.
func Binaries(t testing.TB) *framework.Binaries {
	t.Helper()
	binOnce.Do(func() {
		bins, binErr = framework.BuildBinaries(os.Getenv("NODEREBOOT_BINARIES"), "nodereboot-controller", "nodereboot-detector")
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bins
}

// RemoveBinaries deletes what Binaries built (call it from TestMain).
func RemoveBinaries() {
	if bins != nil {
		bins.Remove()
	}
}

// StartHosts starts a simulated host (e2e/nodesim) for every node, each with
// a real nodereboot-detector process that authenticates as the detector does
// in its pod: with the token bound to the DaemonSet's pod on its node. The
// hosts stop when the test ends.
func (in *Install) StartHosts(ctx context.Context, t *testing.T, detectorArgs ...string) []*nodesim.Node {
	t.Helper()
	det := Binaries(t).Path("nodereboot-detector")
	var hosts []*nodesim.Node
	for _, node := range in.Nodes {
		kubeconfig := WriteKubeconfig(t, in.DetectorConfig(ctx, t, node), "detector-"+node)
		hosts = append(hosts, nodesim.Start(t, in.Cluster, nodesim.Config{NodeName: node, Agent: func(n *nodesim.Node) (string, []string) {
			return det, append([]string{
				"--kubeconfig=" + kubeconfig,
				"--node-name=" + n.Name(),
				"--sentinel=" + n.SentinelPath(),
				"--boot-id-file=" + n.BootIDFile(),
				"--reboot-method=command",
				"--reboot-command=" + n.RebootCommand(),
				"--host-mount-namespace=false",
				"--metrics-bind-address=0",
				"--health-probe-bind-address=0",
			}, detectorArgs...)
		}}))
	}
	return hosts
}

// StartController starts a nodereboot-controller process with the
// controller's service-account token, its Lease in the install's namespace;
// it stops when the test ends.
func (in *Install) StartController(ctx context.Context, t *testing.T, name string, args ...string) *framework.Process {
	t.Helper()
	kubeconfig := WriteKubeconfig(t, in.ControllerConfig(ctx, t), name)
	p := framework.NewProcess(name, Binaries(t).Path("nodereboot-controller"), append([]string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect-resource-namespace=" + in.Namespace,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
	}, args...), in.Cluster.LogDir)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(10 * time.Second) })
	return p
}
