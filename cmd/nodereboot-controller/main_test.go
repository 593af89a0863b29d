package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/nodereboot/nodereboot/pkg/version"
)

func TestBadFlagsExit2NamingTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--max-concurrent=0"}, "--max-concurrent"},
		{[]string{"--max-concurrent=two"}, "--max-concurrent"},
		{[]string{"--on-drain-failure=explode"}, "--on-drain-failure"},
		{[]string{"--no-such-flag"}, "--no-such-flag"},
		{[]string{"--drain-timeout=soon"}, "--drain-timeout"},
		{[]string{"--node-selector=!!"}, "--node-selector"},
		{[]string{"extra-argument"}, "extra-argument"},
		{[]string{"--time-zone=Europe/Atlantis"}, "--time-zone"},
		{[]string{"--start-time=25:61"}, "--start-time"},
		{[]string{"--end-time=5pm"}, "--end-time"},
		{[]string{"--reboot-days=caturday"}, "--reboot-days"},
		{[]string{"--blocking-pod-selector=a b"}, "--blocking-pod-selector"},
		{[]string{"--prometheus-url=not a url"}, "--prometheus-url"},
		{[]string{"--pre-reboot-node-labels=x"}, "--pre-reboot-node-labels"},
		{[]string{"--notify-url=generic+http://127.0.0.1:1/x", "--notify-template-failure={{.Nope}}"}, "--notify-template-failure"},
		{[]string{"--kube-api-qps=-1"}, "--kube-api-qps"},
		{[]string{"--pool-budget=gpu:1:a b c"}, "--pool-budget"},
		{[]string{"--max-concurrent-per-domain=-2"}, "--max-concurrent-per-domain"},
		{[]string{"--topology-key=not a key"}, "--topology-key"},
		{[]string{"--release-conditions=Ready=yes"}, "--release-conditions"},
		{[]string{"--release-taints=*a"}, "--release-taints"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, func(string) string { return "" }, &stdout, &stderr)
		if code != 2 {
			t.Errorf("%v: exit code %d, want 2 (stderr %q)", tc.args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.flag) {
			t.Errorf("%v: message %q does not name %s", tc.args, stderr.String(), tc.flag)
		}
	}
}

func TestHelpAndVersionExit0(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr); code != 0 {
			t.Errorf("%v: exit code %d", args, code)
		}
		if args[0] == "--help" && !strings.Contains(stdout.String(), "--leader-elect-resource-namespace") {
			t.Errorf("help does not list the leader election flags: %s", stdout.String())
		}
		if args[0] == "--help" && strings.Contains(stdout.String(), "--testing-clock-offset") {
			t.Errorf("help lists the hidden test flag: %s", stdout.String())
		}
	}
}

// --version prints "nodereboot-controller <version>" on stdout, as the
// detector does, and starts nothing.
func TestVersion(t *testing.T) {
	defer func(v string) { version.Version = v }(version.Version)
	version.Version = "v9.8.7-test"
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--version", "--max-concurrent=3"}, func(string) string { return "" }, &stdout, &stderr)
	if code != 0 || stdout.String() != "nodereboot-controller v9.8.7-test\n" || stderr.Len() != 0 {
		t.Fatalf("--version: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// Settings from a Secret (environment variables) exit 2 too, naming the
// variable.
func TestBadSecretEnvironmentExits2(t *testing.T) {
	for env, want := range map[string]string{
		"NODEREBOOT_NOTIFY_URLS":    "$NODEREBOOT_NOTIFY_URLS",
		"NODEREBOOT_PROMETHEUS_URL": "$NODEREBOOT_PROMETHEUS_URL",
	} {
		var stdout, stderr bytes.Buffer
		getenv := func(k string) string {
			if k == env {
				return "nosuchservice:secret"
			}
			return ""
		}
		if code := run(context.Background(), nil, getenv, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), want) {
			t.Errorf("%s: exit code %d, message %q; want 2 naming %s", env, code, stderr.String(), want)
		}
		if strings.Contains(stderr.String(), "secret") {
			t.Errorf("%s: the message shows the value: %q", env, stderr.String())
		}
	}
}
