package options

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Notification URLs from the flag, the environment and files, in that order.
func TestNotifyURLsFromSecrets(t *testing.T) {
	file := writeFile(t, "# the team's hooks\ngeneric+https://hooks.example.com/c?token=s3cret\n\n  generic+https://hooks.example.com/d  \n")
	env := map[string]string{EnvNotifyURLs: "generic+https://hooks.example.com/b\n"}
	o, err := parse(t, env, "--notify-url=generic+https://hooks.example.com/a", "--notify-url-file="+file)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"generic+https://hooks.example.com/a", "generic+https://hooks.example.com/b",
		"generic+https://hooks.example.com/c?token=s3cret", "generic+https://hooks.example.com/d"}
	if got := o.NotifyConfig(nil).URLs; !slices.Equal(got, want) {
		t.Errorf("URLs %q, want %q", got, want)
	}
	if !slices.Equal(o.NotifyURLs, want[:1]) {
		t.Errorf("--notify-url changed to %q", o.NotifyURLs)
	}
	// Validate twice: the same URLs, not twice as many.
	if err := o.Validate(); err != nil || len(o.NotifyConfig(nil).URLs) != 4 {
		t.Errorf("validated again: %v, %d URLs", err, len(o.NotifyConfig(nil).URLs))
	}
}

func TestPrometheusURLFromSecrets(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"environment": {map[string]string{EnvPrometheusURL: " https://u:p@prometheus.example.com:9090\n"}, nil, "https://u:p@prometheus.example.com:9090"},
		"file":        {nil, []string{"--prometheus-url-file=" + writeFile(t, "http://prometheus.monitoring:9090\n")}, "http://prometheus.monitoring:9090"},
		"flag":        {nil, []string{"--prometheus-url=http://p:9090"}, "http://p:9090"},
		"none":        {nil, nil, ""},
	} {
		o, err := parse(t, tc.env, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c, err := o.Complete()
		cfg := controllerConfig(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := ""
		if cfg.Alerts != nil {
			got = cfg.Alerts.URL
		}
		if got != tc.want {
			t.Errorf("%s: alert gate URL %q, want %q", name, got, tc.want)
		}
	}
}

// A bad secret setting names its flag or variable, and never shows the value.
func TestBadSecretsNameTheSource(t *testing.T) {
	badURLs := writeFile(t, "generic+https://ok.example.com/x\nnosuchservice://tok3n@x\n")
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--notify-url-file=/nonexistent/urls"}, "--notify-url-file"},
		{nil, []string{"--notify-url-file=" + badURLs}, "--notify-url-file: " + badURLs + " line 2"},
		{map[string]string{EnvNotifyURLs: "generic+https://ok.example.com/x tok3n"}, nil, "$NODEREBOOT_NOTIFY_URLS (URL 2)"},
		{map[string]string{EnvNotifyURLs: "nosuchservice://tok3n@x"}, nil, "$NODEREBOOT_NOTIFY_URLS (URL 1)"},
		{map[string]string{EnvPrometheusURL: "prometheus:tok3n@9090"}, nil, "$NODEREBOOT_PROMETHEUS_URL"},
		{nil, []string{"--prometheus-url-file=" + writeFile(t, "ftp://u:tok3n@p")}, "--prometheus-url-file"},
		{nil, []string{"--prometheus-url-file=" + writeFile(t, "\n")}, "--prometheus-url-file"},
		{nil, []string{"--prometheus-url-file=/nonexistent/url"}, "--prometheus-url-file"},
		{map[string]string{EnvPrometheusURL: "http://p:9090"}, []string{"--prometheus-url=http://q:9090"}, "$NODEREBOOT_PROMETHEUS_URL: conflicts with --prometheus-url"},
		{map[string]string{EnvPrometheusURL: "http://p:9090"}, []string{"--prometheus-url-file=" + writeFile(t, "http://q:9090")}, "--prometheus-url-file: conflicts with $NODEREBOOT_PROMETHEUS_URL"},
	} {
		_, err := parse(t, tc.env, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want %q", tc.env, tc.args, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "tok3n") {
			t.Errorf("%v %v: the error shows the secret: %v", tc.env, tc.args, err)
		}
	}
}
