package main

import (
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
)

// `ctr snapshots unpack DIGEST`, as containerd 1.6's: the image whose
// target has that digest (a manifest, or an index for this host's
// platform) is unpacked into the snapshotter, as `images import` and
// `pull` do; layers already unpacked are kept, so a second run only checks.
func init() {
	cmd := &cli.Command{
		Name:      "unpack",
		Usage:     "unpack applies layers from a manifest to a snapshot",
		ArgsUsage: "[flags] <digest>",
		Flags: []cli.Flag{&cli.StringFlag{Name: snapshotterFlag.Name, Usage: snapshotterFlag.Usage,
			EnvVars: snapshotterFlag.EnvVars}},
		Action: snapshotsUnpack,
	}
	// In containerd's order: after tree, before usage.
	subs := snapshotsCommand.Subcommands
	at := len(subs)
	for i, s := range subs {
		if s.Name > cmd.Name {
			at = i
			break
		}
	}
	snapshotsCommand.Subcommands = append(subs[:at:at], append([]*cli.Command{cmd}, subs[at:]...)...)
}

func snapshotsUnpack(c *cli.Context) error {
	if c.NArg() > 1 {
		return fmt.Errorf("unpack takes one manifest digest: %w", errdefs.ErrInvalidArgument)
	}
	if c.NArg() == 0 {
		return fmt.Errorf("must provide a manifest digest: %w", errdefs.ErrInvalidArgument)
	}
	dgst, err := digest.Parse(c.Args().First())
	if err != nil {
		return err
	}
	cl, ctx, cancel, err := newClient(c)
	if err != nil {
		return err
	}
	defer cancel()
	logrus.Debugf("unpacking layers from manifest %s", dgst)
	imgs, err := cl.ListImages(ctx)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		target := img.Target()
		if target.Digest != dgst {
			continue
		}
		fmt.Printf("unpacking %s (%s)...", dgst, target.MediaType)
		if err := img.Unpack(ctx, c.String("snapshotter")); err != nil {
			fmt.Println()
			return err
		}
		fmt.Println("done")
		return nil
	}
	ns, _ := namespaces.Namespace(ctx)
	return fmt.Errorf("manifest %s: no image in namespace %q has it as its target: %w", dgst, ns, errdefs.ErrNotFound)
}
