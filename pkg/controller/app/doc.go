// Package app runs the nodereboot controller process: the API client, the
// event recorder, the metrics and probe servers, and leader election. Only
// the leader builds the controller (its informers and queue), so that a new
// leader starts from a fresh LIST; when leadership is lost all work stops and
// Run returns an error, so that the process exits and restarts clean.
package app
