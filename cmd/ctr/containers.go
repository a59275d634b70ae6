package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/pkg/typeurl"
)

var containersCommand = &cli.Command{
	Name:    "containers",
	Aliases: []string{"c", "container"},
	Usage:   "manage containers",
	Subcommands: []*cli.Command{
		containerCreateCommand,
		{
			Name:      "list",
			Aliases:   []string{"ls"},
			Usage:     "list containers",
			ArgsUsage: "[flags] [<filter>, ...]",
			Flags:     []cli.Flag{&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the container id"}},
			Action: func(c *cli.Context) error {
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				cs, err := cl.ContainerSummaries(ctx, c.Args().Slice()...)
				if err != nil {
					return err
				}
				// One write at the end: tabwriter writes every cell and
				// its padding separately, a system call each.
				out := bufio.NewWriterSize(os.Stdout, 64<<10)
				if c.Bool("quiet") {
					for _, ct := range cs {
						out.WriteString(ct.ID)
						out.WriteByte('\n')
					}
					return out.Flush()
				}
				w := newTabWriterTo(out)
				w.Write([]byte("CONTAINER\tIMAGE\tRUNTIME\t\n"))
				var line []byte
				for _, ct := range cs {
					line = append(line[:0], ct.ID...)
					line = append(append(line, '\t'), orDash(ct.Image)...)
					line = append(append(line, '\t'), ct.Runtime...)
					line = append(line, "\t\n"...)
					w.Write(line)
				}
				if err := w.Flush(); err != nil {
					return err
				}
				return out.Flush()
			},
		},
		{
			Name:      "info",
			Usage:     "get info about a container",
			ArgsUsage: "CONTAINER",
			Flags:     []cli.Flag{&cli.BoolFlag{Name: "spec", Usage: "only display the spec"}},
			Action: func(c *cli.Context) error {
				return withContainer(c, c.Args().First(), func(ctx context.Context, _ *client.Client, ct *client.Container) error {
					info, err := ct.Info(ctx)
					if err != nil {
						return err
					}
					var spec interface{}
					if info.Spec != nil {
						var s specs.Spec
						if err := typeurl.UnmarshalTo(info.Spec, &s); err == nil {
							spec = &s
						}
					}
					if c.Bool("spec") {
						return printJSON(spec)
					}
					return printJSON(infoJSON(info, spec))
				})
			},
		},
		{
			Name:      "delete",
			Aliases:   []string{"del", "remove", "rm"},
			Usage:     "delete one or more existing containers",
			ArgsUsage: "CONTAINER [CONTAINER, ...]",
			Flags:     []cli.Flag{&cli.BoolFlag{Name: "keep-snapshot", Usage: "do not clean up snapshot with container"}},
			Action: func(c *cli.Context) error {
				if c.NArg() == 0 {
					return errors.New("must specify at least one container to delete")
				}
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				var failed bool
				for _, id := range c.Args().Slice() {
					if err := deleteContainer(ctx, cl, id, !c.Bool("keep-snapshot")); err != nil {
						failed = true
						fmt.Fprintf(c.App.ErrWriter, "ctr: failed to delete container %q: %v\n", id, err)
					}
				}
				if failed {
					return cli.Exit("", 1)
				}
				return nil
			},
		},
		{
			Name:      "label",
			Usage:     "set and clear labels for a container",
			ArgsUsage: "CONTAINER [<key>=<value>, ...]",
			Action: func(c *cli.Context) error {
				labels, err := parseLabels(c.Args().Tail())
				if err != nil {
					return err
				}
				return withContainer(c, c.Args().First(), func(ctx context.Context, _ *client.Client, ct *client.Container) error {
					return setContainerLabels(ctx, ct, labels)
				})
			},
		},
	},
}

// setContainerLabels sets labels and prints the container's resulting set.
func setContainerLabels(ctx context.Context, ct *client.Container, labels map[string]string) error {
	all, err := ct.SetLabels(ctx, labels)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		fmt.Println()
		return nil
	}
	fmt.Println(formatLabels(all))
	return nil
}

// infoJSON lays the record out the way containerd's ctr prints it.
func infoJSON(info client.ContainerInfo, spec interface{}) interface{} {
	type runtime struct {
		Name    string      `json:"Name"`
		Options interface{} `json:"Options,omitempty"`
	}
	var opts interface{}
	if info.Runtime.Options != nil {
		if v, err := typeurl.UnmarshalAny(info.Runtime.Options); err == nil {
			opts = v
		}
	}
	return struct {
		ID          string            `json:"ID"`
		Labels      map[string]string `json:"Labels"`
		Image       string            `json:"Image"`
		Runtime     runtime           `json:"Runtime"`
		SnapshotKey string            `json:"SnapshotKey"`
		Snapshotter string            `json:"Snapshotter"`
		CreatedAt   time.Time         `json:"CreatedAt"`
		UpdatedAt   time.Time         `json:"UpdatedAt"`
		Extensions  interface{}       `json:"Extensions"`
		Spec        interface{}       `json:"Spec"`
	}{
		ID: info.ID, Labels: info.Labels, Image: info.Image,
		Runtime:     runtime{Name: info.Runtime.Name, Options: opts},
		SnapshotKey: info.SnapshotKey, Snapshotter: info.Snapshotter,
		CreatedAt: info.CreatedAt, UpdatedAt: info.UpdatedAt, Extensions: info.Extensions, Spec: spec,
	}
}
