package client

import (
	"context"
	"fmt"

	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/snapshots"
)

func init() {
	// Containers created from an image not yet unpacked get it unpacked.
	EnsureUnpacked = func(ctx context.Context, c *Client, img ImageRuntimeInfo, snapshotter string) error {
		return NewImage(c, ImageInfo{Name: img.Name, Target: img.Target}).Unpack(ctx, snapshotter)
	}
}

// snapshotterName resolves "" to the namespace's default snapshotter.
func (c *Client) snapshotterName(ctx context.Context, name string) (string, error) {
	if name != "" {
		return name, nil
	}
	return c.DefaultSnapshotterFor(ctx)
}

// Unpack applies the image's layers for its platform into the snapshotter
// ("" for the namespace's default) through the daemon's differ. Layers
// already unpacked are reused. It runs under a lease so that nothing it
// makes is collected half-way; the image's config then keeps the snapshot.
func (i *Image) Unpack(ctx context.Context, snapshotter string) error {
	ctx = i.c.withNamespace(ctx)
	name, err := i.c.snapshotterName(ctx, snapshotter)
	if err != nil {
		return err
	}
	ctx, done, err := i.c.WithLease(ctx)
	if err != nil {
		return err
	}
	defer done(context.WithoutCancel(ctx))
	if _, err := images.Unpack(ctx, i.c.ContentStore(), i.i.Target, i.c.SnapshotService(name), i.c.DiffService(), i.platform,
		images.WithSnapshotterName(name)); err != nil {
		return fmt.Errorf("unpack image %q into %s: %w", i.i.Name, name, err)
	}
	return nil
}

// IsUnpacked reports whether the image's top layer is a committed
// snapshot in the snapshotter ("" for the namespace's default).
func (i *Image) IsUnpacked(ctx context.Context, snapshotter string) (bool, error) {
	ctx = i.c.withNamespace(ctx)
	name, err := i.c.snapshotterName(ctx, snapshotter)
	if err != nil {
		return false, err
	}
	diffIDs, err := i.RootFS(ctx)
	if err != nil {
		return false, err
	}
	if len(diffIDs) == 0 {
		return false, nil
	}
	info, err := i.c.SnapshotService(name).Stat(ctx, images.ChainID(diffIDs).String())
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return info.Kind == snapshots.KindCommitted, nil
}

// unpackAll unpacks each image, for platform, into snapshotter, calling
// progress (may be nil) before and after each.
func (c *Client) unpackAll(ctx context.Context, imgs []ImageInfo, platform platforms.MatchComparer, snapshotter string, progress func(img ImageInfo, done bool, err error)) error {
	for _, rec := range imgs {
		img := NewImageWithPlatform(c, rec, platform)
		if progress != nil {
			progress(rec, false, nil)
		}
		err := img.Unpack(ctx, snapshotter)
		if progress != nil {
			progress(rec, true, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
