package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

var namespacesCommand = &cli.Command{
	Name:    "namespaces",
	Aliases: []string{"namespace", "ns"},
	Usage:   "manage namespaces",
	Subcommands: []*cli.Command{
		{
			Name:      "create",
			Aliases:   []string{"c"},
			Usage:     "create a new namespace",
			ArgsUsage: "<name> [<key>=<value>...]",
			Action: func(c *cli.Context) error {
				name := c.Args().First()
				if name == "" {
					return errors.New("namespace name must be provided")
				}
				labels, err := parseLabels(c.Args().Tail())
				if err != nil {
					return err
				}
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				return cl.Namespaces().Create(ctx, name, labels)
			},
		},
		{
			Name:      "label",
			Usage:     "set and clear labels for a namespace",
			ArgsUsage: "<name> [<key>=<value>, ...]",
			Action: func(c *cli.Context) error {
				name := c.Args().First()
				if name == "" {
					return errors.New("namespace name must be provided")
				}
				labels, err := parseLabels(c.Args().Tail())
				if err != nil {
					return err
				}
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				for k, v := range labels {
					if err := cl.Namespaces().SetLabel(ctx, name, k, v); err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			Name:    "list",
			Aliases: []string{"ls"},
			Usage:   "list namespaces",
			Flags:   []cli.Flag{&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the namespace name"}},
			Action: func(c *cli.Context) error {
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				names, err := cl.Namespaces().List(ctx)
				if err != nil {
					return err
				}
				if c.Bool("quiet") {
					for _, n := range names {
						fmt.Println(n)
					}
					return nil
				}
				w := newTabWriter()
				fmt.Fprintln(w, "NAME\tLABELS\t")
				for _, n := range names {
					labels, err := cl.Namespaces().Labels(ctx, n)
					if err != nil {
						return err
					}
					fmt.Fprintf(w, "%s\t%s\t\n", n, formatLabels(labels))
				}
				return w.Flush()
			},
		},
		{
			Name:        "remove",
			Aliases:     []string{"rm"},
			Usage:       "remove one or more namespaces",
			ArgsUsage:   "<name> [<name>, ...]",
			Description: "remove one or more namespaces. for now, the namespace must be empty",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "cgroup", Aliases: []string{"c"}, Usage: "delete the namespace's cgroup"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() == 0 {
					return errors.New("namespace name must be provided")
				}
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				var failed error
				for _, n := range c.Args().Slice() {
					if err := cl.Namespaces().Delete(ctx, n); err != nil {
						failed = err
						fmt.Fprintf(c.App.ErrWriter, "ctr: %v\n", err)
						continue
					}
					// Only once the namespace is gone: its tasks'
					// cgroups are then gone too.
					if c.Bool("cgroup") {
						if err := removeNamespaceCgroup(n); err != nil {
							failed = err
							fmt.Fprintf(c.App.ErrWriter, "ctr: namespace %s removed, its cgroup not: %v\n", n, err)
						}
					}
					fmt.Println(n)
				}
				if failed != nil {
					return cli.Exit("", 1)
				}
				return nil
			},
		},
	},
}
