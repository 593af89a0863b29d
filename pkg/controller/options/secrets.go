package options

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/pflag"

	"github.com/nodereboot/nodereboot/pkg/notify"
)

// Settings that hold credentials (a webhook token in a notification URL, a
// password in the Prometheus URL) can come from a Secret, as an environment
// variable or a mounted file, so that they are not in the Deployment's
// arguments, which whoever may read Deployments reads. The flags
// --notify-url and --prometheus-url still work.
const (
	// EnvNotifyURLs holds notification URLs separated by white space
	// (newlines), added to --notify-url.
	EnvNotifyURLs = "NODEREBOOT_NOTIFY_URLS"
	// EnvPrometheusURL holds the Prometheus URL, instead of
	// --prometheus-url.
	EnvPrometheusURL = "NODEREBOOT_PROMETHEUS_URL"
)

// secretSettings are the settings read from the environment at New and from
// files at Validate.
type secretSettings struct {
	// NotifyURLFiles (--notify-url-file) hold notification URLs, one a line.
	NotifyURLFiles []string
	// PrometheusURLFile (--prometheus-url-file) holds the Prometheus URL.
	PrometheusURLFile string

	envNotifyURLs, envPrometheusURL string
	// What Validate read: the valid URLs only.
	notifyURLs    []string
	prometheusURL string
}

func (s *secretSettings) readEnv(getenv func(string) string) {
	s.envNotifyURLs = getenv(EnvNotifyURLs)
	s.envPrometheusURL = strings.TrimSpace(getenv(EnvPrometheusURL))
}

func (s *secretSettings) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&s.NotifyURLFiles, "notify-url-file", s.NotifyURLFiles,
		"File of Shoutrrr URLs to notify, one a line (# comments; repeatable), e.g. a key of a Secret mounted as a volume; added to --notify-url and $"+EnvNotifyURLs+" (URLs separated by white space). Read at start.")
	fs.StringVar(&s.PrometheusURLFile, "prometheus-url-file", s.PrometheusURLFile,
		"File holding the Prometheus URL (basic-auth credentials in it as https://user:password@host), e.g. a key of a Secret mounted as a volume; instead of --prometheus-url or $"+EnvPrometheusURL+". Read at start.")
}

// resolve reads the files, checks every value and keeps the valid ones; each
// error names its flag or variable and never shows a URL (it may hold a
// credential). flagPrometheusURL is --prometheus-url.
func (s *secretSettings) resolve(readFile func(string) ([]byte, error), flagPrometheusURL string) []error {
	var errs []error
	bad := func(source, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", source, fmt.Sprintf(format, args...)))
	}
	s.resolveNotifyURLs(readFile, bad)
	s.resolvePrometheusURL(readFile, flagPrometheusURL, bad)
	return errs
}

// resolveNotifyURLs collects the notification URLs of $NODEREBOOT_NOTIFY_URLS
// and the --notify-url-file files (one a line; blank lines and # comments
// skipped), each checked.
func (s *secretSettings) resolveNotifyURLs(readFile func(string) ([]byte, error), bad func(source, format string, args ...any)) {
	s.notifyURLs = nil
	addNotify := func(source, u string) {
		if err := checkNotifyURL(u); err != nil {
			bad(source, "%v", err)
			return
		}
		s.notifyURLs = append(s.notifyURLs, u)
	}
	for i, u := range strings.Fields(s.envNotifyURLs) {
		addNotify(fmt.Sprintf("$%s (URL %d)", EnvNotifyURLs, i+1), u)
	}
	for _, f := range s.NotifyURLFiles {
		b, err := readFile(f)
		if err != nil {
			bad("--notify-url-file", "%v", err)
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			addNotify(fmt.Sprintf("--notify-url-file: %s line %d", f, n), line)
		}
		if err := sc.Err(); err != nil {
			bad("--notify-url-file", "%s: %v", f, err)
		}
	}
}

// resolvePrometheusURL takes the Prometheus URL from the one source that
// gives it (--prometheus-url, $NODEREBOOT_PROMETHEUS_URL or
// --prometheus-url-file); two sources, or a URL that is not http(s), are
// errors.
func (s *secretSettings) resolvePrometheusURL(readFile func(string) ([]byte, error), flagPrometheusURL string, bad func(source, format string, args ...any)) {
	s.prometheusURL = ""
	var sources []string
	if flagPrometheusURL != "" {
		sources = append(sources, "--prometheus-url")
	}
	if s.envPrometheusURL != "" {
		sources = append(sources, "$"+EnvPrometheusURL)
		s.prometheusURL = s.envPrometheusURL
	}
	if s.PrometheusURLFile != "" {
		sources = append(sources, "--prometheus-url-file")
		b, err := readFile(s.PrometheusURLFile)
		switch {
		case err != nil:
			bad("--prometheus-url-file", "%v", err)
		case strings.TrimSpace(string(b)) == "":
			bad("--prometheus-url-file", "%s is empty", s.PrometheusURLFile)
		default:
			s.prometheusURL = strings.TrimSpace(string(b))
		}
	}
	if len(sources) > 1 {
		bad(sources[len(sources)-1], "conflicts with %s: give the Prometheus URL once", strings.Join(sources[:len(sources)-1], " and "))
		s.prometheusURL = ""
	}
	if s.prometheusURL != "" && !httpURL(s.prometheusURL) {
		bad(sources[0], "want an http:// or https:// URL (not shown: it may hold a password)")
		s.prometheusURL = ""
	}
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkNotifyURL checks one notification URL as the sender will; the error
// names the scheme, not the URL.
func checkNotifyURL(u string) error {
	scheme, _, ok := strings.Cut(u, "://")
	if !ok || scheme == "" {
		return fmt.Errorf("not a URL (want service://…; not shown: it may hold a token)")
	}
	if _, err := notify.New(notify.Config{URLs: []string{u}}); err != nil {
		msg := strings.ReplaceAll(err.Error(), u, "<url>")
		if p, err := url.Parse(u); err == nil && p.User != nil {
			if pw, ok := p.User.Password(); ok && pw != "" {
				msg = strings.ReplaceAll(msg, pw, "<password>")
			}
		}
		return fmt.Errorf("invalid %s URL: %s", scheme, msg)
	}
	return nil
}
