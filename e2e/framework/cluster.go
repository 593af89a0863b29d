package framework

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

//go:embed kwok-stages.yaml
var kwokStages []byte

// KwokNodeAnnotation marks the nodes that kwok simulates.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

// Options configure a local cluster. The zero value is a cluster with no nodes.
type Options struct {
	// Nodes is how many simulated nodes to create, named NodeNamePrefix0..N-1.
	Nodes int
	// NodeNamePrefix defaults to "node-".
	NodeNamePrefix string
	// BinDir holds the binaries; default DefaultBinDir().
	BinDir string
	// Dir is where data, certificates, kubeconfigs and logs go; default a new
	// temporary folder. Logs are in Dir/logs.
	Dir string
	// NodeLeaseSeconds is the node lease duration kwok keeps; default 40.
	// Without a lease the node-lifecycle controller flaps every node.
	NodeLeaseSeconds int
	// Logf receives progress lines; default none.
	Logf func(format string, args ...any)
	// AuditPolicy, when set, is the API server's audit policy (YAML); the
	// audit log is then written to AuditLog() as JSON lines.
	AuditPolicy string
	// Users are static-token users besides the admin, for example a real
	// kubelet's node identity (system:node:NAME in system:nodes, for the
	// Node authorizer) in e2e/realnode.
	Users []StaticUser
}

// StaticUser is a user of the API server's token file.
type StaticUser struct {
	Token, Name string
	Groups      []string
}

// Cluster is a running local control plane.
type Cluster struct {
	// Dir holds everything the cluster writes; LogDir each component's log.
	Dir, LogDir, BinDir string
	// AdminKubeconfig is the path of a kubeconfig for a system:masters user.
	AdminKubeconfig string
	// AdminConfig is the same as a rest.Config, and Client a clientset on it.
	AdminConfig *rest.Config
	Client      kubernetes.Interface
	// Server is the API server's URL; CAData the PEM of the CA that signed
	// its serving certificate.
	Server string
	CAData []byte

	// The control plane's processes, for tests that stop or restart them.
	Etcd, APIServer, ControllerManager, Scheduler, Kwok *Process

	opts    Options
	tempDir bool
	pki     *pki
}

// StartCluster starts a cluster for a test and stops it when the test ends.
// When the test fails, the folder with the component logs is kept and named.
func StartCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if c != nil {
		t.Cleanup(func() {
			if t.Failed() {
				c.dumpState()
			}
			c.Stop()
			if t.Failed() {
				t.Logf("cluster logs kept in %s", c.LogDir)
				return
			}
			c.Remove()
		})
	}
	if err != nil {
		t.Fatalf("start local cluster: %v", err)
	}
	return c
}

// dumpState writes what the API server holds of the objects a failed test
// is most often about (nodes, pods, disruption budgets, leases, events) to
// state.yaml in the log folder, before the cluster stops.
func (c *Cluster) dumpState() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := c.Kubectl(ctx, "get", "nodes,pods,poddisruptionbudgets,leases,configmaps,events", "-A", "-o", "yaml")
	if err != nil {
		out += "\n# kubectl: " + err.Error() + "\n"
	}
	_ = os.WriteFile(filepath.Join(c.LogDir, "state.yaml"), []byte(out), 0o644)
}

// Start starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// and kwok, creates opts.Nodes nodes and returns when they are Ready. On an
// error the returned Cluster (if not nil) must still be stopped.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.NodeNamePrefix == "" {
		opts.NodeNamePrefix = "node-"
	}
	if opts.NodeLeaseSeconds == 0 {
		opts.NodeLeaseSeconds = 40
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	c := &Cluster{opts: opts, BinDir: opts.BinDir, Dir: opts.Dir}
	if c.BinDir == "" {
		d, err := DefaultBinDir()
		if err != nil {
			return nil, err
		}
		c.BinDir = d
	}
	if err := checkBinaries(c.BinDir); err != nil {
		return nil, err
	}
	if c.Dir == "" {
		d, err := os.MkdirTemp("", "nodereboot-cluster-")
		if err != nil {
			return nil, err
		}
		c.Dir, c.tempDir = d, true
	}
	c.LogDir = filepath.Join(c.Dir, "logs")
	if err := os.MkdirAll(c.LogDir, 0o755); err != nil {
		return nil, err
	}
	started := time.Now()
	if err := c.start(ctx); err != nil {
		return c, err
	}
	opts.Logf("control plane ready in %s (logs: %s)", time.Since(started).Round(time.Millisecond), c.LogDir)
	if opts.Nodes > 0 {
		names := make([]string, opts.Nodes)
		for i := range names {
			names[i] = opts.NodeNamePrefix + strconv.Itoa(i)
		}
		if err := c.CreateNodes(ctx, names...); err != nil {
			return c, err
		}
		opts.Logf("%d nodes Ready in %s", opts.Nodes, time.Since(started).Round(time.Millisecond))
	}
	return c, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.BinDir, name) }

func (c *Cluster) start(ctx context.Context) error {
	pki, err := newPKI(c.Dir)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	c.pki = pki
	c.CAData = pki.caPEM
	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort, kcmPort, schedPort, kwokPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]

	// etcd
	etcdURL := "http://" + hostPort(etcdClient)
	c.Etcd = NewProcess("etcd", c.bin("etcd"), []string{
		"--name=default",
		"--data-dir=" + filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls=" + etcdURL,
		"--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=http://" + hostPort(etcdPeer),
		"--initial-advertise-peer-urls=http://" + hostPort(etcdPeer),
		"--initial-cluster=default=http://" + hostPort(etcdPeer),
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	}, c.LogDir)
	if err := c.Etcd.Start(); err != nil {
		return err
	}
	if err := waitFor(ctx, c.Etcd, "etcd", httpOK(etcdURL+"/health", "", nil)); err != nil {
		return err
	}

	// kube-apiserver, with a static token for the admin.
	token := randomHex(16)
	tokenFile := filepath.Join(c.Dir, "tokens.csv")
	tokens := token + `,nodereboot-e2e-admin,nodereboot-e2e-admin,"system:masters"` + "\n"
	for _, u := range c.opts.Users {
		tokens += fmt.Sprintf("%s,%s,%s,%q\n", u.Token, u.Name, u.Name, strings.Join(u.Groups, ","))
	}
	if err := os.WriteFile(tokenFile, []byte(tokens), 0o600); err != nil {
		return err
	}
	c.Server = "https://" + hostPort(apiPort)
	c.APIServer = NewProcess("kube-apiserver", c.bin("kube-apiserver"), []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + filepath.Join(c.Dir, "apiserver-certs"),
		"--tls-cert-file=" + pki.certFile,
		"--tls-private-key-file=" + pki.keyFile,
		"--client-ca-file=" + pki.caFile,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=Node,RBAC",
		// As on real clusters: a kubelet may write only its own Node (and
		// the pods bound to it); see NodeConfig.
		"--enable-admission-plugins=NodeRestriction",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saPubFile,
		"--service-account-signing-key-file=" + pki.saKeyFile,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--max-requests-inflight=1000",
		"--max-mutating-requests-inflight=500",
		"--v=1",
	}, c.LogDir)
	if c.opts.AuditPolicy != "" {
		policy := filepath.Join(c.Dir, "audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(c.opts.AuditPolicy), 0o644); err != nil {
			return err
		}
		c.APIServer.Args = append(c.APIServer.Args,
			"--audit-policy-file="+policy,
			"--audit-log-path="+c.AuditLog(),
			"--audit-log-mode=blocking",
			"--audit-log-maxsize=0")
	}
	if err := c.APIServer.Start(); err != nil {
		return err
	}
	if err := c.WaitForAPIServer(ctx); err != nil {
		return err
	}

	c.AdminConfig = &rest.Config{
		Host:            c.Server,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: pki.caPEM},
		QPS:             200,
		Burst:           400,
		UserAgent:       "nodereboot-e2e",
	}
	c.Client, err = kubernetes.NewForConfig(c.AdminConfig)
	if err != nil {
		return err
	}
	c.AdminKubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := c.writeKubeconfig(c.AdminKubeconfig, "nodereboot-e2e-admin", token); err != nil {
		return err
	}

	c.ControllerManager = NewProcess("kube-controller-manager", c.bin("kube-controller-manager"), []string{
		"--kubeconfig=" + c.AdminKubeconfig,
		"--authentication-kubeconfig=" + c.AdminKubeconfig,
		"--authorization-kubeconfig=" + c.AdminKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(kcmPort),
		"--controllers=*",
		"--leader-elect=false",
		"--service-account-private-key-file=" + pki.saKeyFile,
		"--root-ca-file=" + pki.caFile,
		"--use-service-account-credentials=false",
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--v=1",
	}, c.LogDir)
	c.Scheduler = NewProcess("kube-scheduler", c.bin("kube-scheduler"), []string{
		"--kubeconfig=" + c.AdminKubeconfig,
		"--authentication-kubeconfig=" + c.AdminKubeconfig,
		"--authorization-kubeconfig=" + c.AdminKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(schedPort),
		"--leader-elect=false",
		"--v=1",
	}, c.LogDir)
	stages := filepath.Join(c.Dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, kwokStages, 0o644); err != nil {
		return err
	}
	c.Kwok = NewProcess("kwok", c.bin("kwok"), []string{
		"--kubeconfig=" + c.AdminKubeconfig,
		"--config=" + stages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=fake",
		"--node-lease-duration-seconds=" + strconv.Itoa(c.opts.NodeLeaseSeconds),
		"--server-address=" + hostPort(kwokPort),
		"--cidr=10.0.0.1/16",
		"--node-ip=10.0.0.1",
	}, c.LogDir)
	for _, p := range []*Process{c.ControllerManager, c.Scheduler, c.Kwok} {
		if err := p.Start(); err != nil {
			return err
		}
	}
	insecure := &tls.Config{InsecureSkipVerify: true} // loopback health endpoints with self-signed certs
	if err := waitFor(ctx, c.ControllerManager, "kube-controller-manager", httpOK("https://"+hostPort(kcmPort)+"/healthz", "", insecure)); err != nil {
		return err
	}
	if err := waitFor(ctx, c.Scheduler, "kube-scheduler", httpOK("https://"+hostPort(schedPort)+"/healthz", "", insecure)); err != nil {
		return err
	}
	// The service-account controller makes "default" in every namespace;
	// pods cannot be created before it exists.
	if _, err := c.WaitForServiceAccount(ctx, "default", "default"); err != nil {
		return fmt.Errorf("kube-controller-manager: %w (log: %s)", err, c.ControllerManager.LogFile)
	}
	return nil
}

// UserConfig is a rest.Config that authenticates as user in groups, with a
// client certificate signed by the cluster's CA (no token, no
// impersonation: the API server's authenticator itself says who it is).
func (c *Cluster) UserConfig(user string, groups ...string) (*rest.Config, error) {
	certPEM, keyPEM, err := c.pki.clientCert(user, groups)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            c.Server,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData, CertData: certPEM, KeyData: keyPEM},
		QPS:             50,
		Burst:           100,
		UserAgent:       "nodereboot-e2e-" + user,
	}, nil
}

// NodeConfig is the credential of a node's kubelet: user system:node:<node>
// in group system:nodes, which the Node authorizer and the NodeRestriction
// admission plugin (enabled on every local cluster) confine to that node.
func (c *Cluster) NodeConfig(node string) (*rest.Config, error) {
	return c.UserConfig("system:node:"+node, "system:nodes")
}

// AuditLog is the path of the API server's audit log (see Options.AuditPolicy).
func (c *Cluster) AuditLog() string { return filepath.Join(c.Dir, "audit.log") }

// WaitForAPIServer waits until the API server answers /readyz.
func (c *Cluster) WaitForAPIServer(ctx context.Context) error {
	return waitFor(ctx, c.APIServer, "kube-apiserver", httpOK(c.Server+"/readyz", c.adminToken(), &tls.Config{RootCAs: nil, InsecureSkipVerify: true}))
}

func (c *Cluster) adminToken() string {
	if c.AdminConfig != nil {
		return c.AdminConfig.BearerToken
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, "tokens.csv"))
	if err != nil {
		return ""
	}
	tok, _, _ := strings.Cut(string(b), ",")
	return tok
}

func httpOK(url, token string, tlsConfig *tls.Config) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

// writeKubeconfig writes a kubeconfig for the cluster with a bearer token.
func (c *Cluster) writeKubeconfig(path, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: user}
	cfg.CurrentContext = "local"
	return clientcmd.WriteToFile(*cfg, path)
}

// Stop stops every component, the last started first. It is safe to call
// more than once.
func (c *Cluster) Stop() {
	for _, p := range []*Process{c.Kwok, c.Scheduler, c.ControllerManager, c.APIServer, c.Etcd} {
		if p != nil {
			p.Stop(10 * time.Second)
		}
	}
}

// Remove deletes the cluster's folder if Start made it.
func (c *Cluster) Remove() {
	if c.tempDir {
		_ = os.RemoveAll(c.Dir)
	}
}

// Processes lists the control plane's processes.
func (c *Cluster) Processes() []*Process {
	var ps []*Process
	for _, p := range []*Process{c.Etcd, c.APIServer, c.ControllerManager, c.Scheduler, c.Kwok} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}
