// Package kubeclient is the detector's API client: its Node (listed,
// watched, patched) and Events, in core/v1, over one REST client.
//
// It exists for memory. client-go's clientset (k8s.io/client-go/kubernetes)
// registers every API group of Kubernetes in its scheme when the program
// starts; a binary that links it keeps about 10 MiB more resident on every
// node than one that registers core/v1 alone, and the detector runs on every
// node. The controller, which runs twice per cluster, uses the clientset.
package kubeclient
