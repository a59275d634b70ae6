package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/pkg/reference"
)

func init() {
	imagesCommand.Subcommands = append(imagesCommand.Subcommands, imageConvertCommand)
}

// imageConvertCommand is containerd 1.6's `ctr images convert`: the
// platform filter defaults to this host's platform alone (exactly, as
// containerd's DefaultStrict), the new root's digest is printed, and with
// no --oci or --uncompress the result is the source filtered by platform.
var imageConvertCommand = &cli.Command{
	Name:      "convert",
	Usage:     "convert an image",
	ArgsUsage: "[flags] <source_ref> <target_ref>",
	Description: `Convert an image format.

e.g., 'ctr convert --uncompress --oci example.com/foo:orig example.com/foo:converted'

Use '--platform' to define the output platform.
When '--all-platforms' is given all images in a manifest list must be available.`,
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "uncompress", Usage: "convert tar.gz layers to uncompressed tar layers"},
		&cli.BoolFlag{Name: "oci", Usage: "convert Docker media types to OCI media types"},
		&cli.StringSliceFlag{Name: "platform", Usage: "Pull content from a specific platform"},
		&cli.BoolFlag{Name: "all-platforms", Usage: "exports content from all platforms"},
	},
	Action: func(c *cli.Context) error {
		src, dst := c.Args().Get(0), c.Args().Get(1)
		if src == "" || dst == "" {
			return errors.New("src and target image need to be specified")
		}
		if c.NArg() > 2 {
			return fmt.Errorf("unexpected arguments %q: want <source_ref> <target_ref>", c.Args().Slice()[2:])
		}
		if _, err := reference.Parse(src); err != nil {
			return fmt.Errorf("source: %w", err)
		}
		if _, err := reference.Parse(dst); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		var opts []client.ConvertOpt
		if !c.Bool("all-platforms") {
			m := platforms.OnlyStrict(platforms.Default())
			if specs := c.StringSlice("platform"); len(specs) > 0 {
				ps, err := platforms.ParseAll(specs)
				if err != nil {
					return err
				}
				m = platforms.Ordered(ps...)
			}
			opts = append(opts, client.WithConvertPlatform(m))
		}
		if c.Bool("uncompress") {
			opts = append(opts, client.WithConvertUncompress())
		}
		if c.Bool("oci") {
			opts = append(opts, client.WithConvertOCI())
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		// The source as given, else as normalised ("busybox").
		srcImg, err := localImage(ctx, cl, src)
		if err != nil {
			return err
		}
		img, err := cl.Convert(ctx, dst, srcImg.Name, opts...)
		if err != nil {
			return err
		}
		fmt.Println(img.Target.Digest)
		return nil
	},
}
