package options

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	componentbaseconfig "k8s.io/component-base/config"
	cbvalidation "k8s.io/component-base/config/validation"

	"github.com/nodereboot/nodereboot/pkg/cli"
	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/notify"
)

// leaderElectionFlags names the flag of each field of the leader election
// configuration (component-base's BindLeaderElectionFlags).
var leaderElectionFlags = map[string]string{
	"leaseDuration":     "leader-elect-lease-duration",
	"renewDeadline":     "leader-elect-renew-deadline",
	"retryPeriod":       "leader-elect-retry-period",
	"resourceLock":      "leader-elect-resource-lock",
	"resourceName":      "leader-elect-resource-name",
	"resourceNamespace": "leader-elect-resource-namespace",
}

// leaderElectionErrors validates the leader election configuration with
// component-base's ValidateLeaderElectionConfiguration and names the flags;
// nodereboot takes only Lease locks.
func leaderElectionErrors(le *componentbaseconfig.LeaderElectionConfiguration) []error {
	var errs cli.FlagErrors
	for _, e := range cbvalidation.ValidateLeaderElectionConfiguration(le, field.NewPath("")) {
		name := e.Field[strings.LastIndex(e.Field, ".")+1:]
		msg := e.ErrorBody()
		if name == "leaseDuration" && strings.Contains(e.Detail, "RenewDeadline") {
			// The lease outlasts the renewal deadline: name both flags.
			msg = fmt.Sprintf("must be greater than --leader-elect-renew-deadline (%s), got %s",
				le.RenewDeadline.Duration, le.LeaseDuration.Duration)
		}
		errs.Add(leaderElectionFlags[name], "%s", msg)
	}
	if le.LeaderElect && le.ResourceLock != "" && le.ResourceLock != "leases" {
		errs.Add("leader-elect-resource-lock", "only \"leases\" is supported, got %q", le.ResourceLock)
	}
	return errs.Errs()
}

// prometheusURLOrSecret is --prometheus-url, or the URL Complete read from
// $NODEREBOOT_PROMETHEUS_URL or --prometheus-url-file.
func (o *Options) prometheusURLOrSecret() string {
	if o.PrometheusURL != "" {
		return o.PrometheusURL
	}
	return o.secretSettings.prometheusURL
}

// NotifyConfig is the configuration of the notifications; onResult counts
// them.
func (o *Options) NotifyConfig(onResult func(string)) notify.Config {
	steps := map[notify.Step]string{}
	for step, v := range o.NotifyStepTemplates {
		if v != nil && *v != "" {
			steps[step] = *v
		}
	}
	urls := append(append([]string(nil), o.NotifyURLs...), o.secretSettings.notifyURLs...)
	return notify.Config{URLs: urls, Template: o.NotifyTemplate, StepTemplates: steps,
		Timeout: o.NotifyTimeout, OnResult: onResult}
}

// nodeLabels parses the key=value labels of --flag; nodereboot's own labels
// are refused.
func nodeLabels(flag string, items []string, errs *cli.FlagErrors) map[string]string {
	out, err := parseLabels(items)
	if err != nil {
		errs.Add(flag, "%v", err)
		return nil
	}
	for k := range out {
		if strings.HasPrefix(k, contract.Prefix) {
			errs.Add(flag, "%s: the %s labels are nodereboot's own", k, contract.Prefix)
		}
	}
	return out
}

// parseLabels parses key=value items; keys and values must be valid label
// keys and values.
func parseLabels(items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(strings.TrimSpace(it), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want key=value", it)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("%q: invalid label key: %s", it, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("%q: invalid label value: %s", it, strings.Join(errs, "; "))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%q: label %s given twice", it, k)
		}
		out[k] = v
	}
	return out, nil
}
