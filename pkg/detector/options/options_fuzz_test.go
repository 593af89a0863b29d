package options

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/nodereboot/nodereboot/pkg/detector"
)

// FuzzOptions: any command line either fails to parse or validate with a
// message naming a flag, or gives a configuration the detector accepts.
func FuzzOptions(f *testing.F) {
	for _, args := range []string{
		"--node-name=node-0",
		"--node-name=node-0 --reboot-method=signal --reboot-signal=39",
		"--node-name=node-0 --reboot-method=dbus --dbus-socket=/run/dbus/system_bus_socket",
		"--node-name=node-0 --detection=false --reboot-command=/bin/true",
		"--node-name=node-0 --sentinel-command=needs-restarting\t-r --sentinel-command-period=30s",
		"--node-name=Node_0",
		"--node-name=n --condition-type=Ready",
		"--node-name=n --heartbeat-period=0s",
		"--node-name=n --metrics-bind-address=:8080 --health-probe-bind-address=:8080",
		"--node-name=n --reboot-method=kexec",
		"--node-name=n --sentinel=relative/path",
		"--node-name=n --reboot-command=",
	} {
		f.Add(args)
	}
	f.Fuzz(func(t *testing.T, line string) {
		o := New()
		fs := pflag.NewFlagSet("detector", pflag.ContinueOnError)
		fs.SetOutput(nopWriter{})
		o.AddFlags(fs)
		if err := fs.Parse(strings.Split(line, " ")); err != nil {
			return
		}
		c, err := o.Complete()
		if err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(l, "--") {
					t.Fatalf("error line %q does not name its flag", l)
				}
			}
			return
		}
		cfg := c.Detector
		if cfg.NodeName == "" || cfg.BootIDFile == "" || cfg.Rebooter == nil {
			t.Fatalf("valid options, incomplete configuration %+v", cfg)
		}
		if cfg.Detection {
			if cfg.Source == nil || cfg.HeartbeatPeriod <= 0 || cfg.ConditionType == "" || cfg.ConditionType == "Ready" {
				t.Fatalf("valid options, bad detection configuration %+v", cfg)
			}
		}
		var _ detector.Config = cfg
	})
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
