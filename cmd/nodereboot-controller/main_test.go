package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
	} {
		var stderr bytes.Buffer
		code := run(context.Background(), tc.args, func(string) string { return "" }, &stderr)
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
		var stderr bytes.Buffer
		if code := run(context.Background(), args, func(string) string { return "" }, &stderr); code != 0 {
			t.Errorf("%v: exit code %d", args, code)
		}
		if args[0] == "--help" && !strings.Contains(stderr.String(), "--leader-elect-resource-namespace") {
			t.Errorf("help does not list the leader election flags: %s", stderr.String())
		}
	}
}
