// Package detector holds the integration tests of nodereboot-detector on the
// real local control plane (e2e/framework): the real binary, run by a node
// simulator (e2e/nodesim) as its host's agent, with a service-account
// kubeconfig bound to deploy/rbac/detector-clusterrole.yaml.
package detector
