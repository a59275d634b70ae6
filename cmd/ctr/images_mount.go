package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/leases"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/pkg/reference"
	"github.com/berth-containers/berth/snapshots"
)

func init() {
	imagesCommand.Subcommands = append(imagesCommand.Subcommands, imageMountCommand, imageUnmountCommand)
}

// `ctr images mount` works as containerd's: the snapshot is named by the
// target path and held by a lease of the same name (24 hours), so that it
// survives ctr and `ctr images unmount --rm TARGET` can find both again.
var imageMountCommand = &cli.Command{
	Name:      "mount",
	Usage:     "mount an image to a target path",
	ArgsUsage: "[flags] <ref> <target>",
	Description: `Mount an image's root file system at the target directory, read-only
unless --rw (then changes go to a snapshot of its own). The image is unpacked
first if it is not; an image not in the store is pulled first, with the
registry flags and --label. Undo with 'ctr images unmount [--rm] <target>'.`,
	Flags: append(mountRegistryFlags(),
		snapshotterFlag,
		&cli.BoolFlag{Name: "rw", Usage: "enable write support on the mount"},
		&cli.StringFlag{Name: "platform", Usage: "mount the image for the specified platform"},
	),
	Action: func(c *cli.Context) error {
		ref, target := c.Args().Get(0), c.Args().Get(1)
		if ref == "" {
			return errors.New("please provide an image reference to mount")
		}
		if target == "" {
			return errors.New("please provide a target path to mount to")
		}
		target, err := filepath.Abs(target)
		if err != nil {
			return err
		}
		if st, err := os.Stat(target); err != nil {
			return err
		} else if !st.IsDir() {
			return fmt.Errorf("mount target %s is not a directory", target)
		}
		var matchers []string
		if p := c.String("platform"); p != "" {
			matchers = []string{p}
		}
		platform, err := platformMatcher(matchers)
		if err != nil {
			return err
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		sn := c.String("snapshotter")
		if sn == "" {
			if sn, err = cl.DefaultSnapshotterFor(ctx); err != nil {
				return err
			}
		}
		img, err := cl.ResolveImage(ctx, ref, platform)
		if errdefs.IsNotFound(err) {
			img, err = pullForMount(ctx, c, cl, ref, sn, platform)
		}
		if err != nil {
			return err
		}
		// The lease is kept on success: it is what holds the snapshot. One
		// left by an earlier mount of the target (unmounted without --rm)
		// is taken up again, with its snapshot.
		lctx, done, err := cl.WithLease(ctx, client.WithLeaseID(target), client.WithExpiration(24*time.Hour))
		switch {
		case errdefs.IsAlreadyExists(err):
			lctx, done = leases.WithLease(ctx, target), func(context.Context) error { return nil }
		case err != nil:
			return fmt.Errorf("lease %q: %w", target, err)
		}
		ctx = lctx
		mounts, err := prepareMountSnapshot(ctx, cl, img, sn, target, c.Bool("rw"))
		if err == nil {
			if err = mount.All(mounts, target); err != nil {
				if rerr := cl.SnapshotService(sn).Remove(ctx, target); rerr != nil {
					err = errors.Join(err, fmt.Errorf("remove snapshot %q: %w", target, rerr))
				}
			}
		}
		if err != nil {
			if derr := done(context.WithoutCancel(ctx)); derr != nil {
				err = errors.Join(err, fmt.Errorf("delete lease %q: %w", target, derr))
			}
			return err
		}
		fmt.Fprintln(c.App.Writer, target)
		return nil
	},
}

// mountRegistryFlags are the registry flags of containerd's images mount
// and unmount, with --label but without the registry flags' --platform
// (mount has a single-valued one of its own).
func mountRegistryFlags() []cli.Flag {
	var flags []cli.Flag
	for _, f := range registryFlags() {
		if f.Names()[0] != "platform" {
			flags = append(flags, f)
		}
	}
	return append(flags, &cli.StringSliceFlag{Name: "label", Usage: "labels to attach to the image (when it is pulled)"})
}

// pullForMount pulls ref, unpacked into sn for platform, with the registry
// flags; containerd's mount takes these flags but never pulls, so an image
// missing locally is an error there and a pull here.
func pullForMount(ctx context.Context, c *cli.Context, cl *client.Client, ref, sn string, platform platforms.MatchComparer) (client.ImageRuntimeInfo, error) {
	named, err := reference.ParseNormalized(ref)
	if err != nil {
		return client.ImageRuntimeInfo{}, fmt.Errorf("image %q is not in the store and cannot be pulled: %w", ref, err)
	}
	opts, err := remoteOpts(c)
	if err != nil {
		return client.ImageRuntimeInfo{}, err
	}
	opts = append(opts, client.WithPlatformMatcher(platform), client.WithPullUnpack(), client.WithPullSnapshotter(sn))
	if l := c.StringSlice("label"); len(l) > 0 {
		labels, err := parseLabels(l)
		if err != nil {
			return client.ImageRuntimeInfo{}, err
		}
		opts = append(opts, client.WithPullLabels(labels))
	}
	if _, err := cl.Pull(ctx, named.String(), opts...); err != nil {
		return client.ImageRuntimeInfo{}, registryError(c, fmt.Errorf("image %q not found in the store, and pulling it failed: %w", ref, err))
	}
	return cl.ResolveImage(ctx, named.String(), platform)
}

// prepareMountSnapshot makes the snapshot named key on top of the image
// (unpacking it if needed): writable with rw, else a view. A snapshot of
// that name already there (a target mounted before) is reused.
func prepareMountSnapshot(ctx context.Context, cl *client.Client, img client.ImageRuntimeInfo, sn, key string, rw bool) ([]mount.Mount, error) {
	s := cl.SnapshotService(sn)
	create := func() ([]mount.Mount, error) {
		if rw {
			return s.Prepare(ctx, key, img.ChainID.String())
		}
		return s.View(ctx, key, img.ChainID.String())
	}
	mounts, err := create()
	if errdefs.IsNotFound(err) {
		if err := client.EnsureUnpacked(ctx, cl, img, sn); err != nil {
			return nil, fmt.Errorf("unpack image %q: %w", img.Name, err)
		}
		mounts, err = create()
	}
	if errdefs.IsAlreadyExists(err) {
		want := snapshots.KindView
		if rw {
			want = snapshots.KindActive
		}
		info, serr := s.Stat(ctx, key)
		if serr != nil {
			return nil, fmt.Errorf("snapshot %q: %w", key, serr)
		}
		if info.Kind != want {
			return nil, fmt.Errorf("%s already has a snapshot of kind %s, not %s: remove it first with 'ctr images unmount --rm %s': %w",
				key, info.Kind, want, key, errdefs.ErrFailedPrecondition)
		}
		mounts, err = s.Mounts(ctx, key)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %q of image %q: %w", key, img.Name, err)
	}
	return mounts, nil
}

var imageUnmountCommand = &cli.Command{
	Name:      "unmount",
	Usage:     "unmount the image from the target",
	ArgsUsage: "[flags] <target>",
	// The registry flags are accepted, as containerd's unmount accepts
	// them, and have nothing to do: unmount never talks to a registry.
	Flags: append(mountRegistryFlags(),
		&cli.BoolFlag{Name: "rm", Usage: "remove the snapshot after a successful unmount"},
		snapshotterFlag,
	),
	Action: func(c *cli.Context) error {
		target := c.Args().First()
		if target == "" {
			return errors.New("please provide a target path to unmount from")
		}
		target, err := filepath.Abs(target)
		if err != nil {
			return err
		}
		if err := mount.UnmountAll(target, 0); err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		if !c.Bool("rm") {
			return nil
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		// Deleting the lease synchronously collects the snapshot it held.
		if err := cl.Leases().Delete(ctx, target, true); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove the snapshot of %s (lease %q): %w", target, target, err)
		}
		// A snapshot no lease held (a mount made otherwise) is removed
		// by name from the snapshotter, as containerd's ctr does.
		sn := c.String("snapshotter")
		if sn == "" {
			if sn, err = cl.DefaultSnapshotterFor(ctx); err != nil {
				return err
			}
		}
		if err := cl.SnapshotService(sn).Remove(ctx, target); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove snapshot %s from %s: %w", target, sn, err)
		}
		return nil
	},
}
