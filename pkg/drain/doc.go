// Package drain evicts the pods of one node through the eviction API, the way
// the controller needs it: one non-blocking pass at a time, never a DELETE,
// DaemonSet and mirror pods left alone, a refused eviction (HTTP 429, a
// PodDisruptionBudget) reported with the budget's name and retried when that
// budget's status changes to allow a disruption (BudgetHandler, on the
// controller's budget informer; at most one attempt per change, spaced by
// Options.MinRetrySpacing), else after Options.RetryDelay. PodWatches runs a
// pod informer per draining node (a field selector on spec.nodeName), so
// that waiting for pods to go is driven by watch events and the memory used
// does not grow with the size of the cluster.
package drain
