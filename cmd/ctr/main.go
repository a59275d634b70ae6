// Command ctr is Berth's command-line client, shaped like containerd's ctr.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	// First: ctr's P count is set before other packages initialise.
	_ "github.com/berth-containers/berth/cmd/ctr/internal/oneproc"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/version"
)

func main() {
	app := &cli.App{
		Name:    "ctr",
		Usage:   "command-line client for berthd (and containerd-compatible daemons)",
		Version: version.Version,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "debug", Usage: "enable debug output in logs"},
			&cli.StringFlag{Name: "address", Aliases: []string{"a"}, Usage: "address for berthd's GRPC server",
				Value: client.DefaultAddress, EnvVars: []string{"BERTH_ADDRESS", "CONTAINERD_ADDRESS"}},
			&cli.DurationFlag{Name: "timeout", Usage: "total timeout for ctr commands"},
			&cli.DurationFlag{Name: "connect-timeout", Usage: "timeout for connecting to berthd", Value: 10 * time.Second},
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "namespace to use with commands",
				Value: namespaces.Default, EnvVars: []string{"BERTH_NAMESPACE", "CONTAINERD_NAMESPACE"}},
		},
		Before: func(c *cli.Context) error {
			if c.Bool("debug") {
				logrus.SetLevel(logrus.DebugLevel)
			}
			return nil
		},
		Commands: commands(),
		ExitErrHandler: func(c *cli.Context, err error) {
			if err == nil {
				return
			}
			if ec, ok := err.(cli.ExitCoder); ok {
				if msg := ec.Error(); msg != "" {
					fmt.Fprintf(os.Stderr, "ctr: %s\n", msg)
				}
				os.Exit(ec.ExitCode())
			}
			fmt.Fprintf(os.Stderr, "ctr: %s\n", err)
			os.Exit(1)
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "ctr: %s\n", err)
		os.Exit(1)
	}
}

// commands lists every command group; each lives in its own file.
func commands() []*cli.Command {
	return append([]*cli.Command{
		versionCommand,
		namespacesCommand,
		containersCommand,
		pluginsCommand,
		eventsCommand,
		leasesCommand,
	}, extraCommands...)
}

// extraCommands is appended to by files for later command groups.
var extraCommands []*cli.Command

// appContext is the context for a command: the namespace from the flag, a
// timeout if one was given, cancelled on SIGINT/SIGTERM only when the
// command does not handle signals itself.
func appContext(c *cli.Context) (context.Context, context.CancelFunc) {
	ctx := namespaces.WithNamespace(context.Background(), c.String("namespace"))
	if t := c.Duration("timeout"); t > 0 {
		return context.WithTimeout(ctx, t)
	}
	return context.WithCancel(ctx)
}

// signalContext is appContext cancelled by SIGINT/SIGTERM.
func signalContext(c *cli.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := appContext(c)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	return ctx, func() { stop(); cancel() }
}

// newClient connects and returns the client with the command's context.
func newClient(c *cli.Context) (*client.Client, context.Context, context.CancelFunc, error) {
	opts := []client.Opt{client.WithTimeout(c.Duration("connect-timeout")), client.WithDefaultNamespace(c.String("namespace"))}
	if c.Bool("debug") {
		opts = append(opts, debugDialOpts())
	}
	cl, err := client.New(c.String("address"), opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := appContext(c)
	return cl, ctx, func() { background.Wait(); cancel(); cl.Close() }, nil
}

// background is work a command left running beside its main path (see
// newContainer); it ends before the client closes.
var background sync.WaitGroup
