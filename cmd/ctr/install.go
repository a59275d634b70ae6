package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/pkg/errdefs"
)

// `ctr install [--libs] [--replace] [--path DIR] REF`, as containerd 1.6's:
// the files directly under bin/ (and with --libs, lib/) of the image REF,
// already in the content store, are installed into DIR/bin (DIR/lib), DIR
// being --path or the path the daemon's opt plugin exports. See
// client.Install.
func init() {
	extraCommands = append(extraCommands, installCommand)
}

var installCommand = &cli.Command{
	Name:        "install",
	Usage:       "install a new package",
	ArgsUsage:   "<ref>",
	Description: "install a new package",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "libs", Aliases: []string{"l"}, Usage: "install libs from the image"},
		&cli.BoolFlag{Name: "replace", Aliases: []string{"r"}, Usage: "replace any binaries or libs in the opt directory"},
		&cli.StringFlag{Name: "path", Usage: "set an optional install path other than the managed opt directory"},
	},
	Action: func(c *cli.Context) error {
		ref := c.Args().First()
		if ref == "" {
			return fmt.Errorf("please provide an image reference to install: %w", errdefs.ErrInvalidArgument)
		}
		if c.NArg() > 1 {
			return fmt.Errorf("install takes one image reference, got %q: %w", c.Args().Slice(), errdefs.ErrInvalidArgument)
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
		var opts []client.InstallOpts
		if c.Bool("libs") {
			opts = append(opts, client.WithInstallLibs)
		}
		if c.Bool("replace") {
			opts = append(opts, client.WithInstallReplace)
		}
		if p := c.String("path"); p != "" {
			opts = append(opts, client.WithInstallPath(p))
		}
		return cl.Install(ctx, img, opts...)
	},
}
