// Package deploy tests the install: the kustomize base in deploy/ and its
// components, the Helm chart in deploy/helm/nodereboot, the Dockerfile, and
// the admission policies (each detector on its own Node, only the controller
// writes its annotations; e2e/attacks plays the attacks on them).
//
// Without a cluster (manifests_test.go, dockerfile_test.go): every container's
// flags are parsed by the binaries' own option parsers; the chart's values
// cover every flag with the binary's default; the chart renders the same
// objects as the kustomize base and each component; the RBAC of the chart is
// deploy/rbac; the alerts use metrics the binaries export; the
// node-problem-detector plugin behaves; the Dockerfile is linted (this test
// is the linter: hadolint is not packaged for Debian) and puts the binaries
// where the manifests run them.
//
// On the real local control plane (install_test.go, helm_test.go): every
// variant is applied with `kubectl apply --server-side` (schemas, RBAC
// objects, the policy's CEL type-checked), the workloads get pods, the
// admission policy is exercised with a token bound to a detector pod (and by
// the real detector binary), and RBAC is checked with service-account
// credentials. The Prometheus Operator's CRDs are applied from testdata/crds
// (copied from prometheus-operator v0.85.0), so the ServiceMonitor and the
// PrometheusRule are validated against their real schemas.
//
// Needs bin/kubectl and the control plane (make tools) and Helm: bin/helm,
// or $NODEREBOOT_HELM, or else it is built from hack/helm (7 minutes on 2
// cores from a cold cache).
package deploy
