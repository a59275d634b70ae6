package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc/codes"

	api "github.com/berth-containers/berth/api/services/introspection/v1"
	"github.com/berth-containers/berth/pkg/errdefs"
)

var pluginsCommand = &cli.Command{
	Name:    "plugins",
	Aliases: []string{"plugin"},
	Usage:   "provides information about berthd plugins",
	Subcommands: []*cli.Command{
		{
			Name:      "list",
			Aliases:   []string{"ls"},
			Usage:     "lists berthd plugins",
			ArgsUsage: "[filters]",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the plugin ids"},
				&cli.BoolFlag{Name: "detailed", Aliases: []string{"d"}, Usage: "print detailed information about each plugin"},
			},
			Action: func(c *cli.Context) error {
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				r, err := cl.IntrospectionService().Plugins(ctx, &api.PluginsRequest{Filters: c.Args().Slice()})
				if err != nil {
					return errdefs.FromGRPC(err)
				}
				if c.Bool("quiet") {
					for _, p := range r.Plugins {
						fmt.Println(p.Id)
					}
					return nil
				}
				w := newTabWriter()
				if c.Bool("detailed") {
					for _, p := range r.Plugins {
						fmt.Fprintln(w, "Type:\t", p.Type)
						fmt.Fprintln(w, "ID:\t", p.Id)
						if len(p.Requires) > 0 {
							fmt.Fprintln(w, "Requires:\t")
							for _, r := range p.Requires {
								fmt.Fprintln(w, "\t", r)
							}
						}
						if len(p.Platforms) > 0 {
							fmt.Fprintln(w, "Platforms:\t", pluginPlatforms(p))
						}
						if len(p.Exports) > 0 {
							fmt.Fprintln(w, "Exports:\t")
							keys := make([]string, 0, len(p.Exports))
							for k := range p.Exports {
								keys = append(keys, k)
							}
							sort.Strings(keys)
							for _, k := range keys {
								fmt.Fprintln(w, "\t", k, "\t", p.Exports[k])
							}
						}
						if p.InitErr != nil {
							fmt.Fprintln(w, "Error:\t")
							fmt.Fprintln(w, "\t Code:\t", codes.Code(p.InitErr.Code))
							fmt.Fprintln(w, "\t Message:\t", p.InitErr.Message)
						}
						fmt.Fprintln(w, "\t")
					}
					return w.Flush()
				}
				fmt.Fprintln(w, "TYPE\tID\tPLATFORMS\tSTATUS\t")
				for _, p := range r.Plugins {
					status := "ok"
					if p.InitErr != nil {
						status = "error"
						if strings.Contains(p.InitErr.Message, "skip plugin") {
							status = "skip"
						}
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t\n", p.Type, p.Id, pluginPlatforms(p), status)
				}
				return w.Flush()
			},
		},
	},
}

func pluginPlatforms(p *api.Plugin) string {
	if len(p.Platforms) == 0 {
		return "-"
	}
	var out []string
	for _, pl := range p.Platforms {
		s := pl.Os + "/" + pl.Architecture
		if pl.Variant != "" {
			s += "/" + pl.Variant
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}
