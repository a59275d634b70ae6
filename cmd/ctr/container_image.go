package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/oci"
	"github.com/berth-containers/berth/pkg/platforms"
)

func init() {
	imageContainerOpts = containerFromImage
	deleteSnapshotOpt = client.WithSnapshotCleanup
}

// containerFromImage gives a container a writable snapshot on top of the
// image (unpacking it if needed) and a spec from the image's config.
func containerFromImage(ctx context.Context, c *cli.Context, cl *client.Client, ref, id string) ([]client.NewContainerOpts, []oci.SpecOpts, error) {
	var matcher platforms.MatchComparer
	if p := c.String("platform"); p != "" {
		pl, err := platforms.Parse(p)
		if err != nil {
			return nil, nil, err
		}
		matcher = platforms.Only(pl)
	}
	img, err := cl.ResolveImage(ctx, ref, matcher)
	if err != nil {
		return nil, nil, err
	}
	sn := c.String("snapshotter")
	if sn == "" {
		if sn, err = cl.DefaultSnapshotterFor(ctx); err != nil {
			return nil, nil, err
		}
	}
	opts := []client.NewContainerOpts{client.WithSnapshotter(sn), client.WithNewSnapshot(id, img)}
	// User names resolve through the container's own snapshot, which the
	// client mounts read-only for the moment it takes.
	return opts, []oci.SpecOpts{oci.WithImageConfig(img.Config.Config)}, nil
}
