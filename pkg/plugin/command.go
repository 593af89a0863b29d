package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/nodereboot/nodereboot/pkg/cli"
	"github.com/nodereboot/nodereboot/pkg/contract"
	"github.com/nodereboot/nodereboot/pkg/sanitize"
	"github.com/nodereboot/nodereboot/pkg/version"
)

// Name is the plugin's binary name; kubectl runs it as `kubectl nodereboot`.
const Name = "kubectl-nodereboot"

// Options are the plugin's flags besides the kubeconfig ones.
type Options struct {
	// Namespace is the controller's namespace (the pause ConfigMap).
	Namespace string
	// ConditionType is the reboot condition shown by status.
	ConditionType string
	// Reason is the pause reason.
	Reason string
	// Now is the clock (for ages and request times).
	Now func() time.Time
}

// NewClientFunc makes the API client from the kubeconfig flags.
type NewClientFunc func(*genericclioptions.ConfigFlags) (kubernetes.Interface, error)

// cmdError is an error of a subcommand (cmd, "" before it ran): of its
// arguments (exit 2) or, failed, of its work (exit 1). Every other error
// of the command line is one of usage: exit 2.
type cmdError struct {
	cmd    string
	err    error
	failed bool
}

func (e cmdError) Error() string { return sanitize.Message(e.err.Error()) }

// plugin is a command line being run: its flags and streams.
type plugin struct {
	kube      *genericclioptions.ConfigFlags
	o         Options
	streams   genericiooptions.IOStreams
	newClient NewClientFunc
}

// Run runs the plugin with args (without the program name) and returns the
// exit code: 0 done, 1 failed, 2 bad usage. newClient makes the client
// from the kubeconfig flags (nil: from genericclioptions).
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, newClient NewClientFunc) int {
	cmd := NewCommand(streams, newClient)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return cli.ExitOK
	}
	prefix, code := Name, cli.ExitUsage
	var ce cmdError
	if errors.As(err, &ce) {
		if ce.cmd != "" {
			prefix += " " + ce.cmd
		}
		if ce.failed {
			code = cli.ExitFailure
		}
	}
	fmt.Fprintf(streams.ErrOut, "%s: %v\n", prefix, err)
	return code
}

// NewCommand is the plugin's cobra command: the subcommands status,
// request, pause, resume and history, the kubeconfig flags of
// genericclioptions and the plugin's own. Help goes to streams.ErrOut,
// output and --version to streams.Out.
func NewCommand(streams genericiooptions.IOStreams, newClient NewClientFunc) *cobra.Command {
	if newClient == nil {
		newClient = defaultClient
	}
	p := &plugin{kube: genericclioptions.NewConfigFlags(true), o: Options{Now: time.Now}, streams: streams, newClient: newClient}
	root := &cobra.Command{
		Use:           Name,
		Short:         "See and steer nodereboot (docs/kubectl-plugin.md).",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl nodereboot"},
		Version:       version.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(c *cobra.Command, _ []string) error {
			c.SetOut(streams.ErrOut)
			_ = c.Usage()
			return errors.New("want a command: status, request, pause, resume or history")
		},
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetVersionTemplate(cli.VersionLine(Name) + "\n")
	root.CompletionOptions.DisableDefaultCmd = true
	defaultHelp := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		c.SetOut(streams.ErrOut)
		defaultHelp(c, args)
	})
	p.addFlags(root)
	root.AddCommand(p.subcommands()...)
	return root
}

// addFlags binds the kubeconfig flags and the plugin's own to every
// subcommand.
func (p *plugin) addFlags(root *cobra.Command) {
	fs := root.PersistentFlags()
	p.kube.AddFlags(fs)
	fs.StringVar(&p.o.Namespace, "controller-namespace", "nodereboot-system", "Namespace of nodereboot-controller (where the pause ConfigMap "+contract.ConfigMapName+" lives).")
	fs.StringVar(&p.o.ConditionType, "condition-type", contract.DefaultConditionType, "The reboot condition to show.")
	fs.StringVar(&p.o.Reason, "reason", "", "pause: why, for the RebootBlocked events and status.")
	root.Flags().Bool("version", false, "Print the version and exit.")
}

// subcommands are the plugin's commands, each with its arguments.
func (p *plugin) subcommands() []*cobra.Command {
	w := p.streams.Out
	return []*cobra.Command{
		p.subcommand("status", "", "every node: reboot condition, pipeline state, why it is blocked",
			func(ctx context.Context, c kubernetes.Interface, _ []string) error { return Status(ctx, c, p.o, w) }),
		p.subcommand("request", "NODE", "ask for a reboot of NODE (the reboot-requested annotation)",
			func(ctx context.Context, c kubernetes.Interface, args []string) error {
				return Request(ctx, c, p.o, args[0], w)
			}),
		p.subcommand("pause", "", "take no new node (the nodes in progress finish); --reason TEXT says why",
			func(ctx context.Context, c kubernetes.Interface, _ []string) error {
				return Pause(ctx, c, p.o, true, w)
			}),
		p.subcommand("resume", "", "take nodes again",
			func(ctx context.Context, c kubernetes.Interface, _ []string) error {
				return Pause(ctx, c, p.o, false, w)
			}),
		p.subcommand("history", "NODE", "the reboot events of NODE, oldest first",
			func(ctx context.Context, c kubernetes.Interface, args []string) error {
				return History(ctx, c, args[0], w)
			}),
	}
}

// subcommand is a command taking arg (one argument, or none when "") that
// runs do with a client.
func (p *plugin) subcommand(name, arg, short string, do func(context.Context, kubernetes.Interface, []string) error) *cobra.Command {
	want := 0
	use := name
	if arg != "" {
		want, use = 1, name+" "+arg
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != want {
				return cmdError{cmd: name, err: fmt.Errorf("want %d argument(s), got %q", want, args)}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			client, err := p.newClient(p.kube)
			if err != nil {
				return cmdError{err: err, failed: true}
			}
			if err := do(c.Context(), client, args); err != nil {
				return cmdError{cmd: name, err: err, failed: true}
			}
			return nil
		},
	}
}

// defaultClient is the client of the kubeconfig flags, with the plugin's
// user agent.
func defaultClient(f *genericclioptions.ConfigFlags) (kubernetes.Interface, error) {
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = version.UserAgent(Name)
	return kubernetes.NewForConfig(cfg)
}
