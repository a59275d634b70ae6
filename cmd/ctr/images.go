package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
)

func init() {
	extraCommands = append(extraCommands, imagesCommand)
}

// snapshotterFlag is the --snapshotter of the image and snapshot commands.
var snapshotterFlag = &cli.StringFlag{
	Name:    "snapshotter",
	Usage:   "snapshotter name. Empty value stands for the default value.",
	EnvVars: []string{"BERTH_SNAPSHOTTER", "CONTAINERD_SNAPSHOTTER"},
}

var imagesCommand = &cli.Command{
	Name:    "images",
	Aliases: []string{"image", "i"},
	Usage:   "manage images",
	Subcommands: []*cli.Command{
		imageCheckCommand,
		imageExportCommand,
		imageImportCommand,
		imageListCommand,
		imageRemoveCommand,
		imageTagCommand,
		imageLabelCommand,
		imageUsageCommand,
	},
}

// platformMatcher returns the matcher for --platform values: the given
// platforms (the first preferred), else this host's.
func platformMatcher(specs []string) (platforms.MatchComparer, error) {
	if len(specs) == 0 {
		return platforms.DefaultMatcher(), nil
	}
	ps, err := platforms.ParseAll(specs)
	if err != nil {
		return nil, err
	}
	if len(ps) == 1 {
		return platforms.Only(ps[0]), nil
	}
	return platforms.Ordered(ps...), nil
}

var imageImportCommand = &cli.Command{
	Name:      "import",
	Usage:     "import images",
	ArgsUsage: "[flags] <in>",
	Description: `Import images from a tar stream ("-" reads standard input).
Implemented formats:
- oci.v1
- docker.v1.1
- docker.v1.2

For OCI v1, you may need to specify --base-name because an OCI archive may
contain only partial image references (tags without the base image name).
If no base image name is provided, a name will be generated as "import-%{yyyy-MM-dd}".`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "base-name", Usage: "base image name for added images, when provided only images with this name prefix are imported"},
		&cli.BoolFlag{Name: "digests", Usage: "whether to create digest images"},
		&cli.BoolFlag{Name: "skip-digest-for-named", Usage: "skip applying --digests option to images named in the importing tar (use it in conjunction with --digests)"},
		&cli.StringFlag{Name: "index-name", Usage: "image name to keep index as, by default index is discarded"},
		&cli.BoolFlag{Name: "all-platforms", Usage: "imports content for all platforms, false by default"},
		&cli.StringFlag{Name: "platform", Usage: "imports content for specific platform"},
		&cli.BoolFlag{Name: "no-unpack", Usage: "skip unpacking the images, false by default"},
		&cli.BoolFlag{Name: "compress-blobs", Usage: "compress uncompressed blobs when creating manifest (Docker format only)"},
		snapshotterFlag,
	},
	Action: func(c *cli.Context) error {
		in := c.Args().First()
		if in == "" {
			return errors.New("input file (or - for stdin) must be provided")
		}
		var opts []client.ImportOpt
		if n := c.String("base-name"); n != "" {
			opts = append(opts, client.WithImportBaseName(n))
		}
		if c.Bool("digests") {
			opts = append(opts, client.WithImportDigests())
		}
		if c.Bool("skip-digest-for-named") {
			if !c.Bool("digests") {
				return errors.New("--skip-digest-for-named must be specified with --digests option")
			}
			opts = append(opts, client.WithImportSkipDigestForNamed())
		}
		if n := c.String("index-name"); n != "" {
			opts = append(opts, client.WithImportIndexName(n))
		}
		if c.Bool("compress-blobs") {
			opts = append(opts, client.WithImportCompressBlobs())
		}
		if c.Bool("all-platforms") {
			opts = append(opts, client.WithImportAllPlatforms())
		} else if p := c.String("platform"); p != "" {
			m, err := platformMatcher([]string{p})
			if err != nil {
				return err
			}
			opts = append(opts, client.WithImportPlatform(m))
		}
		var r io.ReadCloser = os.Stdin
		if in != "-" {
			f, err := os.Open(in)
			if err != nil {
				return err
			}
			r = f
		}
		defer r.Close()
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		// On a terminal, a status line shows the archive being read; it
		// is cleared before the unpack lines are printed.
		pr := newProgressReader(r, "importing", os.Stderr)
		defer pr.Stop()
		if c.Bool("no-unpack") {
			opts = append(opts, client.WithoutUnpack())
		} else {
			if sn := c.String("snapshotter"); sn != "" {
				opts = append(opts, client.WithImportSnapshotter(sn))
			}
			opts = append(opts, client.WithUnpackProgress(func(img client.ImageInfo, done bool, err error) {
				pr.Stop()
				switch {
				case !done:
					fmt.Printf("unpacking %s (%s)...", img.Name, img.Target.Digest)
				case err == nil:
					fmt.Println("done")
				default:
					fmt.Println()
				}
			}))
		}
		_, err = cl.Import(ctx, pr, opts...)
		return err
	},
}

var imageExportCommand = &cli.Command{
	Name:      "export",
	Usage:     "export images",
	ArgsUsage: "[flags] <out> <image> ...",
	Description: `Export images to an OCI tar archive ("-" writes standard output).

Tar output is formatted as an OCI archive, a Docker manifest is provided for the platform.
Use '--skip-manifest-json' to avoid including the Docker manifest.json file.
Use '--skip-non-distributable' to leave out non-distributable layers.
Use '--platform' to define the output platform.
When '--all-platforms' is given all images in a manifest list must be available.`,
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "skip-manifest-json", Usage: "do not add Docker compatible manifest.json to archive"},
		&cli.BoolFlag{Name: "skip-non-distributable", Usage: "do not add non-distributable blobs such as Windows layers to archive"},
		&cli.StringSliceFlag{Name: "platform", Usage: "Pull content from a specific platform"},
		&cli.BoolFlag{Name: "all-platforms", Usage: "exports content from all platforms"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() < 2 {
			return errors.New("please provide both an output filename and an image reference to export")
		}
		out, names := c.Args().First(), c.Args().Tail()
		var opts []client.ExportOpt
		if c.Bool("all-platforms") {
			opts = append(opts, client.WithExportAllPlatforms())
		} else if ps := c.StringSlice("platform"); len(ps) > 0 {
			m, err := platformMatcher(ps)
			if err != nil {
				return err
			}
			opts = append(opts, client.WithExportPlatform(m))
		}
		if c.Bool("skip-manifest-json") {
			opts = append(opts, client.WithoutDockerManifest())
		}
		if c.Bool("skip-non-distributable") {
			opts = append(opts, client.WithExportSkipNonDistributable())
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		if out == "-" {
			return cl.Export(ctx, os.Stdout, names, opts...)
		}
		// Write beside the target and rename, so a failed export never
		// leaves a truncated archive under the name asked for.
		f, err := os.CreateTemp(dirOf(out), ".ctr-export-*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		if err := cl.Export(ctx, f, names, opts...); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Chmod(f.Name(), 0o644); err != nil {
			return err
		}
		return os.Rename(f.Name(), out)
	},
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		if i == 0 {
			return "/"
		}
		return p[:i]
	}
	return "."
}

var imageListCommand = &cli.Command{
	Name:        "list",
	Aliases:     []string{"ls"},
	Usage:       "list images known to berthd",
	ArgsUsage:   "[flags] [<filter>, ...]",
	Description: "list images registered with berthd",
	Flags:       []cli.Flag{&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the image refs"}},
	Action: func(c *cli.Context) error {
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		imgs, err := cl.ListImages(ctx, c.Args().Slice()...)
		if err != nil {
			return err
		}
		sort.Slice(imgs, func(i, j int) bool { return imgs[i].Name() < imgs[j].Name() })
		if c.Bool("quiet") {
			for _, img := range imgs {
				fmt.Println(img.Name())
			}
			return nil
		}
		tw := ctrTabWriter(os.Stdout)
		fmt.Fprintln(tw, "REF\tTYPE\tDIGEST\tSIZE\tPLATFORMS\tLABELS\t")
		for _, img := range imgs {
			size, err := img.Usage(ctx)
			if err != nil {
				logrus.WithError(err).Errorf("failed calculating size for image %s", img.Name())
			}
			platformColumn := "-"
			if ps, err := img.Platforms(ctx); err != nil {
				logrus.WithError(err).Errorf("failed resolving platform for image %s", img.Name())
			} else if len(ps) > 0 {
				seen := map[string]bool{}
				var names []string
				for _, p := range ps {
					if s := platforms.Format(p); !seen[s] {
						seen[s] = true
						names = append(names, s)
					}
				}
				sort.Strings(names)
				platformColumn = strings.Join(names, ",")
			}
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%s\t\n", img.Name(), img.Target().MediaType, img.Target().Digest,
				byteSize(size), platformColumn, formatLabels(img.Labels()))
		}
		return tw.Flush()
	},
}

var imageRemoveCommand = &cli.Command{
	Name:        "delete",
	Aliases:     []string{"del", "remove", "rm"},
	Usage:       "remove one or more images by reference",
	ArgsUsage:   "[flags] <ref> [<ref>, ...]",
	Description: "remove one or more images by reference",
	Flags:       []cli.Flag{&cli.BoolFlag{Name: "sync", Usage: "Synchronously remove image and all associated resources"}},
	Action: func(c *cli.Context) error {
		if c.NArg() == 0 {
			return errors.New("image reference must be provided")
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		var exitErr error
		refs := c.Args().Slice()
		for i, ref := range refs {
			// Only the last delete waits for the collection: one is enough.
			sync := c.Bool("sync") && i == len(refs)-1
			if err := cl.ImageService().Delete(ctx, ref, sync); err != nil {
				if !errdefs.IsNotFound(err) {
					if exitErr == nil {
						exitErr = fmt.Errorf("unable to delete %v: %w", ref, err)
					}
					logrus.WithError(err).Errorf("unable to delete %v", ref)
					continue
				}
				logrus.Warnf("%v: image not found", ref)
				continue
			}
			fmt.Println(ref)
		}
		return exitErr
	},
}

var imageTagCommand = &cli.Command{
	Name:        "tag",
	Usage:       "tag an image",
	ArgsUsage:   "[flags] <source_ref> <target_ref> [<target_ref>, ...]",
	Description: "Tag an image for use in berthd.",
	Flags:       []cli.Flag{&cli.BoolFlag{Name: "force", Usage: "force target_ref to be created, regardless if it already exists"}},
	Action: func(c *cli.Context) error {
		if c.NArg() < 2 {
			return errors.New("source and target image references must be provided")
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		is := cl.ImageService()
		src, err := is.Get(ctx, c.Args().First())
		if err != nil {
			return err
		}
		for _, target := range c.Args().Tail() {
			img := client.ImageInfo{Name: target, Labels: src.Labels, Target: src.Target}
			if _, err := is.Create(ctx, img); err != nil {
				if !errdefs.IsAlreadyExists(err) || !c.Bool("force") {
					return err
				}
				// Replace in one step: a delete and create would let
				// the collector see the content unreferenced between.
				if _, err := is.Update(ctx, img); err != nil {
					return err
				}
			}
			fmt.Println(target)
		}
		return nil
	},
}

var imageCheckCommand = &cli.Command{
	Name:        "check",
	Usage:       "check existing images to ensure all content is available locally",
	ArgsUsage:   "[flags] [<filter>, ...]",
	Description: "check existing images to ensure all content is available locally",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the ready image refs (fully downloaded and unpacked)"},
		snapshotterFlag,
	},
	Action: func(c *cli.Context) error {
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		imgs, err := cl.ListImages(ctx, c.Args().Slice()...)
		if err != nil {
			return err
		}
		sort.Slice(imgs, func(i, j int) bool { return imgs[i].Name() < imgs[j].Name() })
		quiet := c.Bool("quiet")
		tw := ctrTabWriter(os.Stdout)
		if !quiet {
			fmt.Fprintln(tw, "REF\tTYPE\tDIGEST\tSTATUS\tSIZE\tUNPACKED\t")
		}
		var exitErr error
		for _, img := range imgs {
			status, size, complete := "complete", "-", true
			st, err := img.Check(ctx)
			if err != nil {
				if exitErr == nil {
					exitErr = fmt.Errorf("unable to check %v: %w", img.Name(), err)
				}
				logrus.WithError(err).Errorf("unable to check %v", img.Name())
				status, complete = "error", false
			} else {
				var required, present int64
				for _, d := range st.Required {
					required += d.Size
				}
				for _, d := range st.Present {
					present += d.Size
				}
				if len(st.Missing) > 0 {
					status, complete = "incomplete", false
				}
				if st.Available {
					status += fmt.Sprintf(" (%v/%v)", len(st.Present), len(st.Required))
					size = fmt.Sprintf("%v/%v", byteSize(present), byteSize(required))
				} else {
					status = fmt.Sprintf("unavailable (%v/?)", len(st.Present))
					size = fmt.Sprintf("%v/?", byteSize(present))
					complete = false
				}
			}
			unpacked, err := img.IsUnpacked(ctx, c.String("snapshotter"))
			if err != nil {
				if exitErr == nil {
					exitErr = fmt.Errorf("unable to check unpack for %v: %w", img.Name(), err)
				}
				logrus.WithError(err).Errorf("unable to check unpack for %v", img.Name())
			}
			if quiet {
				if complete && unpacked {
					fmt.Println(img.Name())
				}
				continue
			}
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%t\n", img.Name(), img.Target().MediaType, img.Target().Digest, status, size, unpacked)
		}
		if !quiet {
			tw.Flush()
		}
		return exitErr
	},
}

var imageLabelCommand = &cli.Command{
	Name:        "label",
	Usage:       "set and clear labels for an image",
	ArgsUsage:   "[flags] <name> [<key>=<value>, ...]",
	Description: "set and clear labels for an image",
	Flags:       []cli.Flag{&cli.BoolFlag{Name: "replace-all", Aliases: []string{"r"}, Usage: "replace all labels"}},
	Action: func(c *cli.Context) error {
		name := c.Args().First()
		if name == "" {
			return errors.New("please specify an image")
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
		var paths []string
		if c.Bool("replace-all") {
			paths = []string{"labels"}
			for k, v := range labels {
				if v == "" {
					delete(labels, k)
				}
			}
		} else {
			for k := range labels {
				paths = append(paths, "labels."+k)
			}
		}
		var img client.ImageInfo
		if len(paths) == 0 {
			img, err = cl.ImageService().Get(ctx, name)
		} else {
			img, err = cl.ImageService().Update(ctx, client.ImageInfo{Name: name, Labels: labels}, paths...)
		}
		if err != nil {
			return err
		}
		fmt.Println(joinLabels(img.Labels))
		return nil
	},
}

// joinLabels prints labels as k=v,k2=v2 in key order ("" for none), as
// ctr's label commands do.
func joinLabels(labels map[string]string) string {
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

var imageUsageCommand = &cli.Command{
	Name:      "usage",
	Usage:     "display usage of snapshots for a given image ref",
	ArgsUsage: "[flags] <ref>",
	Flags:     []cli.Flag{snapshotterFlag},
	Action: func(c *cli.Context) error {
		ref := c.Args().First()
		if ref == "" {
			return errors.New("image reference must be provided")
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		img, err := cl.GetImage(ctx, ref)
		if err != nil {
			return err
		}
		diffIDs, err := img.RootFS(ctx)
		if err != nil {
			return err
		}
		sn := c.String("snapshotter")
		if sn == "" {
			if sn, err = cl.DefaultSnapshotterFor(ctx); err != nil {
				return err
			}
		}
		snapshotter := cl.SnapshotService(sn)
		chainIDs := images.ChainIDs(diffIDs)
		tw := ctrTabWriter(os.Stdout)
		fmt.Fprintln(tw, "KEY\tSIZE\tINODES\t")
		for i := len(chainIDs) - 1; i >= 0; i-- {
			u, err := snapshotter.Usage(ctx, chainIDs[i].String())
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%v\t%s\t%d\t\n", chainIDs[i], byteSize(u.Size), u.Inodes)
		}
		return tw.Flush()
	},
}
