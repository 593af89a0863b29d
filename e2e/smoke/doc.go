// Package smoke checks the local control plane itself: that kwok nodes,
// scheduling, PodDisruptionBudgets and the eviction API behave as in a real
// cluster, so that the project's e2e tests can rely on them.
package smoke
