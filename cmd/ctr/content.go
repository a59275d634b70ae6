package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/content/local"
	"github.com/berth-containers/berth/pkg/errdefs"
)

func init() {
	extraCommands = append(extraCommands, contentCommand)
}

var contentCommand = &cli.Command{
	Name:  "content",
	Usage: "manage content",
	Subcommands: []*cli.Command{
		{
			Name:  "active",
			Usage: "display active transfers",
			Flags: []cli.Flag{
				&cli.DurationFlag{Name: "timeout", Aliases: []string{"t"}, Usage: "total timeout for fetch", EnvVars: []string{"CONTAINERD_FETCH_TIMEOUT"}},
				&cli.StringFlag{Name: "root", Usage: "path to content store root: list its ingests directly, without a daemon (e.g. /var/lib/berth/io.containerd.content.v1.content)"},
			},
			ArgsUsage: "[flags] [<regexp>]",
			Description: `display the ongoing transfers; with --root, those in the content store
at that folder, of every namespace, read from the disk (the daemon need not run)`,
			Action: func(c *cli.Context) error {
				var match *regexp.Regexp
				if c.NArg() > 0 {
					var err error
					if match, err = regexp.Compile(c.Args().First()); err != nil {
						return err
					}
				}
				var active []content.Status
				if root := c.String("root"); root != "" {
					var err error
					if active, err = localIngests(c.Context, root); err != nil {
						return err
					}
				} else {
					cl, ctx, cancel, err := newClient(c)
					if err != nil {
						return err
					}
					defer cancel()
					if active, err = cl.ContentStore().ListStatuses(ctx); err != nil {
						return err
					}
				}
				tw := contentTabWriter(os.Stdout)
				fmt.Fprintln(tw, "REF\tSIZE\tAGE\t")
				for _, st := range active {
					if match != nil && !match.MatchString(st.Ref) {
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t\n", st.Ref, humanSize(st.Offset), humanDuration(time.Since(st.StartedAt)))
				}
				return tw.Flush()
			},
		},
		{
			Name:        "delete",
			Aliases:     []string{"del", "remove", "rm"},
			Usage:       "permanently delete one or more blobs",
			ArgsUsage:   "[<digest>, ...]",
			Description: "Delete one or more blobs permanently. Successfully deleted\n  blobs are printed to stdout.",
			Action: func(c *cli.Context) error {
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				cs := cl.ContentStore()
				var exitErr error
				for _, arg := range c.Args().Slice() {
					dgst, err := digest.Parse(arg)
					if err != nil {
						if exitErr == nil {
							exitErr = fmt.Errorf("digest %q: %w", arg, err)
						}
						logrus.WithError(err).Errorf("could not delete %v", arg)
						continue
					}
					if err := cs.Delete(ctx, dgst); err != nil {
						if !errdefs.IsNotFound(err) {
							if exitErr == nil {
								exitErr = err
							}
							logrus.WithError(err).Errorf("could not delete %v", dgst)
						}
						continue
					}
					fmt.Println(dgst)
				}
				return exitErr
			},
		},
		{
			Name:        "get",
			Usage:       "get the data for an object",
			ArgsUsage:   "[<digest>, ...]",
			Description: "display the image object",
			Action: func(c *cli.Context) error {
				if c.NArg() == 0 {
					return errors.New("digest must be provided")
				}
				var dgsts []digest.Digest
				for _, arg := range c.Args().Slice() {
					dgst, err := digest.Parse(arg)
					if err != nil {
						return fmt.Errorf("digest %q: %w", arg, err)
					}
					dgsts = append(dgsts, dgst)
				}
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				cs := cl.ContentStore()
				for _, dgst := range dgsts {
					ra, err := cs.ReaderAt(ctx, ocispec.Descriptor{Digest: dgst})
					if err != nil {
						return err
					}
					_, err = io.Copy(os.Stdout, io.NewSectionReader(ra, 0, ra.Size()))
					ra.Close()
					if err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			Name:        "ingest",
			Usage:       "accept content into the store",
			ArgsUsage:   "[flags] <key>",
			Description: "ingest objects into the local content store",
			Flags: []cli.Flag{
				&cli.Int64Flag{Name: "expected-size", Usage: "validate against provided size"},
				&cli.StringFlag{Name: "expected-digest", Usage: "verify content against expected digest"},
			},
			Action: func(c *cli.Context) error {
				ref := c.Args().First()
				if ref == "" {
					return errors.New("must specify a transaction reference")
				}
				var expected digest.Digest
				if s := c.String("expected-digest"); s != "" {
					d, err := digest.Parse(s)
					if err != nil {
						return fmt.Errorf("expected digest %q: %w", s, err)
					}
					expected = d
				}
				size := c.Int64("expected-size")
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				// As with ctr, no lease: a blob nothing references (an
				// image, a gc.root label) goes at the next collection.
				w, err := cl.ContentStore().Writer(ctx, content.WithRef(ref), content.WithDescriptor(ocispec.Descriptor{Size: size, Digest: expected}))
				if err != nil {
					if errdefs.IsAlreadyExists(err) {
						return nil
					}
					return err
				}
				defer w.Close()
				st, err := w.Status()
				if err != nil {
					return err
				}
				// Resuming: skip what the ingest already has.
				if st.Offset > 0 {
					if _, err := io.CopyN(io.Discard, os.Stdin, st.Offset); err != nil {
						return fmt.Errorf("resume ingest %q at %d: %w", ref, st.Offset, err)
					}
				}
				if _, err := io.Copy(w, os.Stdin); err != nil {
					return err
				}
				if err := w.Commit(ctx, size, expected); err != nil && !errdefs.IsAlreadyExists(err) {
					return err
				}
				return nil
			},
		},
		{
			Name:        "list",
			Aliases:     []string{"ls"},
			Usage:       "list all blobs in the store",
			ArgsUsage:   "[flags] [<filter>, ...]",
			Description: "list blobs in the content store",
			Flags:       []cli.Flag{&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the blob digest"}},
			Action: func(c *cli.Context) error {
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				quiet := c.Bool("quiet")
				tw := contentTabWriter(os.Stdout)
				if !quiet {
					fmt.Fprintln(tw, "DIGEST\tSIZE\tAGE\tLABELS")
				}
				err = cl.ContentStore().Walk(ctx, func(info content.Info) error {
					if quiet {
						fmt.Println(info.Digest)
						return nil
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", info.Digest, humanSize(info.Size), humanDuration(time.Since(info.CreatedAt)), formatLabels(info.Labels))
					return nil
				}, c.Args().Slice()...)
				if err != nil {
					return err
				}
				return tw.Flush()
			},
		},
		{
			Name:        "label",
			Usage:       "add labels to content",
			ArgsUsage:   "<digest> [<label>=<value> ...]",
			Description: "labels blobs in the content store",
			Action: func(c *cli.Context) error {
				object := c.Args().First()
				dgst, err := digest.Parse(object)
				if err != nil {
					return fmt.Errorf("digest %q: %w", object, err)
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
				info := content.Info{Digest: dgst, Labels: map[string]string{}}
				var paths []string
				for k, v := range labels {
					paths = append(paths, "labels."+k)
					if v != "" {
						info.Labels[k] = v
					}
				}
				cs := cl.ContentStore()
				if len(paths) == 0 {
					info, err = cs.Info(ctx, dgst)
				} else {
					info, err = cs.Update(ctx, info, paths...)
				}
				if err != nil {
					return err
				}
				fmt.Println(joinLabels(info.Labels))
				return nil
			},
		},
	},
}

// localIngests lists the ingests of the content store at root on disk.
// It only reads: a folder that is not a content store is refused before
// anything could be created in it.
func localIngests(ctx context.Context, root string) ([]content.Status, error) {
	for _, sub := range []string{"ingest", filepath.Join("blobs", "sha256")} {
		if st, err := os.Stat(filepath.Join(root, sub)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--root %s: not a content store (no %s folder)", root, sub)
		}
	}
	cs, err := local.NewStore(root)
	if err != nil {
		return nil, err
	}
	return cs.ListStatuses(ctx)
}
