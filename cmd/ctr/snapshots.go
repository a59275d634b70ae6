package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/diff"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
)

func init() {
	extraCommands = append(extraCommands, snapshotsCommand)
}

// gcRootLabel keeps what ctr snapshots makes from garbage collection: a
// hand-made snapshot has no image or container holding it.
const gcRootLabel = "containerd.io/gc.root"

// snapshotClient connects and returns the snapshotter named by
// --snapshotter, else the namespace's default.
func snapshotClient(c *cli.Context) (*client.Client, snapshots.Snapshotter, context.Context, context.CancelFunc, error) {
	cl, ctx, cancel, err := newClient(c)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	name := c.String("snapshotter")
	if name == "" {
		if name, err = cl.DefaultSnapshotterFor(ctx); err != nil {
			cancel()
			return nil, nil, nil, nil, err
		}
	}
	return cl, cl.SnapshotService(name), ctx, cancel, nil
}

var snapshotsCommand = &cli.Command{
	Name:    "snapshots",
	Aliases: []string{"snapshot"},
	Usage:   "manage snapshots",
	Flags:   []cli.Flag{snapshotterFlag},
	Subcommands: []*cli.Command{
		{
			Name:      "commit",
			Usage:     "commit an active snapshot into the provided name",
			ArgsUsage: "<key> <active>",
			Action: func(c *cli.Context) error {
				if c.NArg() != 2 {
					return errors.New("must provide a key and an active snapshot")
				}
				_, sn, ctx, cancel, err := snapshotClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				labels := map[string]string{gcRootLabel: time.Now().UTC().Format(time.RFC3339)}
				return sn.Commit(ctx, c.Args().Get(0), c.Args().Get(1), snapshots.WithLabels(labels))
			},
		},
		{
			Name:      "diff",
			Usage:     "get the diff of two snapshots. the default second snapshot is the first snapshot's parent.",
			ArgsUsage: "[flags] <idA> [<idB>]",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "media-type", Usage: "media type to use for creating diff", Value: ocispec.MediaTypeImageLayerGzip},
				&cli.StringFlag{Name: "ref", Usage: "content upload reference to use"},
				&cli.BoolFlag{Name: "keep", Usage: "keep diff content. up to creator to delete it."},
				&cli.StringSliceFlag{Name: "label", Usage: "labels to attach to the image"},
			},
			Action: snapshotDiff,
		},
		{
			Name:      "info",
			Usage:     "get info about a snapshot",
			ArgsUsage: "<key>",
			Action: func(c *cli.Context) error {
				key := c.Args().First()
				if key == "" {
					return errors.New("must provide a snapshot key")
				}
				_, sn, ctx, cancel, err := snapshotClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				info, err := sn.Stat(ctx, key)
				if err != nil {
					return err
				}
				return printJSON(snapshotJSON(info))
			},
		},
		{
			Name:      "list",
			Aliases:   []string{"ls"},
			Usage:     "list snapshots",
			ArgsUsage: "[<filter>, ...]",
			Action: func(c *cli.Context) error {
				_, sn, ctx, cancel, err := snapshotClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				var infos []snapshots.Info
				if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
					infos = append(infos, info)
					return nil
				}, c.Args().Slice()...); err != nil {
					return err
				}
				sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
				tw := ctrTabWriter(os.Stdout)
				fmt.Fprintln(tw, "KEY\tPARENT\tKIND\t")
				for _, info := range infos {
					fmt.Fprintf(tw, "%v\t%v\t%v\t\n", info.Name, info.Parent, info.Kind)
				}
				return tw.Flush()
			},
		},
		{
			Name:      "mounts",
			Aliases:   []string{"m", "mount"},
			Usage:     "mount gets mount commands for the snapshots",
			ArgsUsage: "<target> <key>",
			Action: func(c *cli.Context) error {
				if c.NArg() != 2 {
					return errors.New("must provide a target and a snapshot key")
				}
				_, sn, ctx, cancel, err := snapshotClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				mounts, err := sn.Mounts(ctx, c.Args().Get(1))
				if err != nil {
					return err
				}
				printMounts(c.Args().Get(0), mounts)
				return nil
			},
		},
		snapshotCreateCommand("prepare", "prepare a snapshot from a committed snapshot", snapshots.Snapshotter.Prepare),
		{
			Name:      "delete",
			Aliases:   []string{"del", "remove", "rm"},
			Usage:     "remove snapshots",
			ArgsUsage: "<key> [<key>, ...]",
			Action: func(c *cli.Context) error {
				if c.NArg() == 0 {
					return errors.New("must provide a snapshot key")
				}
				_, sn, ctx, cancel, err := snapshotClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				var exitErr error
				for _, key := range c.Args().Slice() {
					if err := sn.Remove(ctx, key); err != nil {
						if exitErr == nil {
							exitErr = fmt.Errorf("failed to remove %q: %w", key, err)
						}
						logrus.WithError(err).Errorf("failed to remove %q", key)
					}
				}
				return exitErr
			},
		},
		{
			Name:        "label",
			Usage:       "add labels to content",
			ArgsUsage:   "<name> [<label>=<value> ...]",
			Description: "labels snapshots in the snapshotter",
			Action: func(c *cli.Context) error {
				key := c.Args().First()
				if key == "" {
					return errors.New("must provide a snapshot key")
				}
				labels, err := parseLabels(c.Args().Tail())
				if err != nil {
					return err
				}
				_, sn, ctx, cancel, err := snapshotClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				info := snapshots.Info{Name: key, Labels: map[string]string{}}
				var paths []string
				for k, v := range labels {
					paths = append(paths, "labels."+k)
					if v != "" {
						info.Labels[k] = v
					}
				}
				if len(paths) == 0 {
					info, err = sn.Stat(ctx, key)
				} else {
					info, err = sn.Update(ctx, info, paths...)
				}
				if err != nil {
					return err
				}
				fmt.Println(joinLabels(info.Labels))
				return nil
			},
		},
		{
			Name:  "tree",
			Usage: "display tree view of snapshot branches",
			Action: func(c *cli.Context) error {
				_, sn, ctx, cancel, err := snapshotClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				children := map[string][]string{}
				names := map[string]bool{}
				if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
					names[info.Name] = true
					children[info.Parent] = append(children[info.Parent], info.Name)
					return nil
				}); err != nil {
					return err
				}
				// Roots: no parent, or a parent not listed.
				var roots []string
				for parent, kids := range children {
					if parent == "" || !names[parent] {
						roots = append(roots, kids...)
					}
				}
				sort.Strings(roots)
				for _, r := range roots {
					printTree(r, children, 0)
				}
				return nil
			},
		},
		{
			Name:      "usage",
			Usage:     "usage snapshots",
			ArgsUsage: "[flags] [<key>, ...]",
			Flags:     []cli.Flag{&cli.BoolFlag{Name: "b", Usage: "display size in bytes"}},
			Action: func(c *cli.Context) error {
				_, sn, ctx, cancel, err := snapshotClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				display := func(n int64) string { return byteSize(n).String() }
				if c.Bool("b") {
					display = func(n int64) string { return fmt.Sprint(n) }
				}
				keys := c.Args().Slice()
				if len(keys) == 0 {
					if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
						keys = append(keys, info.Name)
						return nil
					}); err != nil {
						return err
					}
					sort.Strings(keys)
				}
				tw := ctrTabWriter(os.Stdout)
				fmt.Fprintln(tw, "KEY\tSIZE\tINODES\t")
				for _, key := range keys {
					u, err := sn.Usage(ctx, key)
					if err != nil {
						return err
					}
					fmt.Fprintf(tw, "%v\t%s\t%d\t\n", key, display(u.Size), u.Inodes)
				}
				return tw.Flush()
			},
		},
		snapshotCreateCommand("view", "create a read-only snapshot from a committed snapshot", snapshots.Snapshotter.View),
	},
}

// snapshotCreateCommand is prepare or view: both take a key and an
// optional parent, print mount commands for --target and JSON for
// --mounts, and label the snapshot as a GC root.
func snapshotCreateCommand(name, usage string, create func(snapshots.Snapshotter, context.Context, string, string, ...snapshots.Opt) ([]mount.Mount, error)) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "[flags] <key> [<parent>]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "target", Aliases: []string{"t"}, Usage: "mount target path, will print mount, if provided"},
			&cli.BoolFlag{Name: "mounts", Usage: "Print out snapshot mounts as JSON"},
		},
		Action: func(c *cli.Context) error {
			if n := c.NArg(); n < 1 || n > 2 {
				return errors.New("must provide a key and optionally a parent")
			}
			key, parent := c.Args().Get(0), c.Args().Get(1)
			_, sn, ctx, cancel, err := snapshotClient(c)
			if err != nil {
				return err
			}
			defer cancel()
			labels := map[string]string{gcRootLabel: time.Now().UTC().Format(time.RFC3339)}
			mounts, err := create(sn, ctx, key, parent, snapshots.WithLabels(labels))
			if err != nil {
				return err
			}
			if t := c.String("target"); t != "" {
				printMounts(t, mounts)
			}
			if c.Bool("mounts") {
				return printJSON(mountsJSON(mounts))
			}
			return nil
		},
	}
}

// printMounts prints a mount command for each mount, as ctr does.
func printMounts(target string, mounts []mount.Mount) {
	for _, m := range mounts {
		fmt.Printf("mount -t %s %s %s -o %s\n", m.Type, m.Source, filepath.Join(target, m.Target), strings.Join(m.Options, ","))
	}
}

type mountJSON struct {
	Type    string
	Source  string
	Target  string `json:",omitempty"`
	Options []string
}

func mountsJSON(mounts []mount.Mount) []mountJSON {
	out := make([]mountJSON, 0, len(mounts))
	for _, m := range mounts {
		out = append(out, mountJSON{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	return out
}

// snapshotJSON is a snapshot's info as `ctr snapshots info` prints it.
func snapshotJSON(info snapshots.Info) interface{} {
	return struct {
		Kind    string            `json:"Kind"`
		Name    string            `json:"Name"`
		Parent  string            `json:"Parent,omitempty"`
		Labels  map[string]string `json:"Labels,omitempty"`
		Created time.Time         `json:"Created"`
		Updated time.Time         `json:"Updated"`
	}{info.Kind.String(), info.Name, info.Parent, info.Labels, info.Created, info.Updated}
}

func printTree(name string, children map[string][]string, level int) {
	prefix := strings.Repeat("  ", level)
	if level > 0 {
		prefix += "\\_"
	}
	fmt.Printf("%s %s\n", prefix, name)
	kids := append([]string(nil), children[name]...)
	sort.Strings(kids)
	for _, k := range kids {
		printTree(k, children, level+1)
	}
}

// snapshotDiff writes the layer between idA and idB (default: idA's
// parent) to stdout. The layer is stored in the content store under a
// lease; with --keep it is labelled a GC root and stays.
func snapshotDiff(c *cli.Context) error {
	idA, idB := c.Args().Get(0), c.Args().Get(1)
	if idA == "" {
		return errors.New("snapshot id must be provided")
	}
	labels, err := parseLabels(c.StringSlice("label"))
	if err != nil {
		return err
	}
	if c.Bool("keep") {
		labels[gcRootLabel] = time.Now().UTC().Format(time.RFC3339)
	}
	cl, sn, ctx, cancel, err := snapshotClient(c)
	if err != nil {
		return err
	}
	defer cancel()
	ctx, done, err := cl.WithLease(ctx)
	if err != nil {
		return err
	}
	defer done(context.WithoutCancel(ctx))

	opt := func(cfg *diff.Config) error {
		cfg.MediaType, cfg.Reference, cfg.Labels = c.String("media-type"), c.String("ref"), labels
		return nil
	}
	if idB == "" {
		info, err := sn.Stat(ctx, idA)
		if err != nil {
			return err
		}
		idB, idA = idA, info.Parent // lower is the parent, upper is A
	} else {
		idA, idB = idB, idA // lower is B, upper is A
	}
	// idA is now the lower ("" for empty), idB the upper.
	var desc ocispec.Descriptor
	err = withSnapshotMounts(ctx, sn, idA, func(lower []mount.Mount) error {
		return withSnapshotMounts(ctx, sn, idB, func(upper []mount.Mount) error {
			var err error
			desc, err = cl.DiffService().Compare(ctx, lower, upper, opt)
			return err
		})
	})
	if err != nil {
		return err
	}
	ra, err := cl.ContentStore().ReaderAt(ctx, desc)
	if err != nil {
		return err
	}
	defer ra.Close()
	_, err = io.Copy(os.Stdout, io.NewSectionReader(ra, 0, ra.Size()))
	return err
}

// withSnapshotMounts calls fn with mounts of the snapshot key: a
// temporary view of a committed one, the mounts of an active one, and an
// empty read-only directory-less set for "" (nothing below).
func withSnapshotMounts(ctx context.Context, sn snapshots.Snapshotter, key string, fn func([]mount.Mount) error) error {
	if key == "" {
		tmp := "diff-empty-" + fmt.Sprint(time.Now().UnixNano())
		mounts, err := sn.View(ctx, tmp, "")
		if err != nil {
			return err
		}
		defer sn.Remove(context.WithoutCancel(ctx), tmp)
		return fn(mounts)
	}
	info, err := sn.Stat(ctx, key)
	if err != nil {
		return err
	}
	if info.Kind != snapshots.KindCommitted {
		mounts, err := sn.Mounts(ctx, key)
		if err != nil {
			return err
		}
		return fn(mounts)
	}
	view := key + "-view-" + fmt.Sprint(time.Now().UnixNano())
	mounts, err := sn.View(ctx, view, key)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return fmt.Errorf("view of %q: %w", key, err)
		}
		return err
	}
	defer sn.Remove(context.WithoutCancel(ctx), view)
	return fn(mounts)
}
