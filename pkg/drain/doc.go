// Package drain evicts the pods of one node through the eviction API, the way
// the controller needs it: one non-blocking pass at a time, never a DELETE,
// DaemonSet and mirror pods left alone, a refused eviction (HTTP 429, a
// PodDisruptionBudget) reported with the budget's name and retried only after
// a delay. PodWatches runs a pod informer per draining node (a field selector
// on spec.nodeName), so that waiting for pods to go is driven by watch events
// and the memory used does not grow with the size of the cluster.
package drain
