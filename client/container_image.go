package client

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	contentapi "github.com/berth-containers/berth/api/services/content/v1"
	imagesapi "github.com/berth-containers/berth/api/services/images/v1"
	snapshotsapi "github.com/berth-containers/berth/api/services/snapshots/v1"
	apitypes "github.com/berth-containers/berth/api/types"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/oci"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/snapshots"
)

// ImageRuntimeInfo is what a container needs from its image: the config
// and the chain ID of its unpacked root file system.
type ImageRuntimeInfo struct {
	Name    string
	Target  ocispec.Descriptor
	Config  ocispec.Image
	ChainID digest.Digest
}

// contentProvider reads blobs through the daemon's content service.
func (c *Client) contentProvider() content.Store {
	return NewRemoteContentStore(contentapi.NewContentClient(c.conn))
}

// ResolveImage loads the image record and reads its config for platform
// (nil = this host).
func (c *Client) ResolveImage(ctx context.Context, name string, platform platforms.MatchComparer) (ImageRuntimeInfo, error) {
	ctx = c.withNamespace(ctx)
	r, err := imagesapi.NewImagesClient(c.conn).Get(ctx, &imagesapi.GetImageRequest{Name: name})
	if err != nil {
		err = errdefs.FromGRPC(err)
		if errdefs.IsNotFound(err) {
			return ImageRuntimeInfo{}, fmt.Errorf("image %q: not found — import or pull it first (ctr images pull %s): %w", name, name, errdefs.ErrNotFound)
		}
		return ImageRuntimeInfo{}, err
	}
	target := descriptorFromProto(r.Image.GetTarget())
	if platform == nil {
		platform = platforms.DefaultMatcher()
	}
	provider := c.contentProvider()
	cfgDesc, err := images.Config(ctx, provider, target, platform)
	if err != nil {
		return ImageRuntimeInfo{}, fmt.Errorf("image %q: %w", name, err)
	}
	cfg, err := images.ReadConfig(ctx, provider, cfgDesc)
	if err != nil {
		return ImageRuntimeInfo{}, fmt.Errorf("image %q config: %w", name, err)
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) == 0 {
		return ImageRuntimeInfo{}, fmt.Errorf("image %q has no layers: %w", name, errdefs.ErrInvalidArgument)
	}
	return ImageRuntimeInfo{Name: name, Target: target, Config: cfg, ChainID: images.ChainID(diffIDs)}, nil
}

func descriptorFromProto(d *apitypes.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType: d.GetMediaType(), Digest: digest.Digest(d.GetDigest()), Size: d.GetSize(), Annotations: d.GetAnnotations(),
	}
}

// EnsureUnpacked makes sure the image's root file system is a committed
// snapshot in snapshotter, unpacking it if needed. Set by the images code
// (unpack.go); nil means images must already be unpacked.
var EnsureUnpacked func(ctx context.Context, c *Client, img ImageRuntimeInfo, snapshotter string) error

// snapshotterOrDefault is the container's snapshotter, the namespace's
// default (then recorded) when none is set.
func (info *ContainerInfo) snapshotterOrDefault(ctx context.Context, c *Client) (string, error) {
	if info.Snapshotter == "" {
		sn, err := c.DefaultSnapshotterFor(ctx)
		if err != nil {
			return "", err
		}
		info.Snapshotter = sn
	}
	return info.Snapshotter, nil
}

// WithNewSnapshot prepares a writable snapshot named key on top of the
// image's root file system for the container, unpacking first if needed;
// opts may label it (snapshots.WithLabels).
func WithNewSnapshot(key string, img ImageRuntimeInfo, opts ...snapshots.Opt) NewContainerOpts {
	return func(ctx context.Context, c *Client, info *ContainerInfo) error {
		sn, err := info.snapshotterOrDefault(ctx, c)
		if err != nil {
			return err
		}
		var base snapshots.Info
		for _, o := range opts {
			if err := o(&base); err != nil {
				return fmt.Errorf("snapshot %q: %w", key, err)
			}
		}
		snaps := snapshotsapi.NewSnapshotsClient(c.conn)
		prepare := func() (*snapshotsapi.PrepareSnapshotResponse, error) {
			r, err := snaps.Prepare(ctx, &snapshotsapi.PrepareSnapshotRequest{
				Snapshotter: sn, Key: key, Parent: img.ChainID.String(), Labels: base.Labels,
			})
			return r, errdefs.FromGRPC(err)
		}
		// Prepare first: the image is nearly always unpacked already, and
		// its snapshot missing shows as NotFound, so asking first (Stat)
		// would cost every container a round trip.
		r, err := prepare()
		if errdefs.IsNotFound(err) {
			if EnsureUnpacked == nil {
				return fmt.Errorf("image %q is not unpacked into snapshotter %q: %w", img.Name, sn, errdefs.ErrFailedPrecondition)
			}
			if err := EnsureUnpacked(ctx, c, img, sn); err != nil {
				return fmt.Errorf("unpack image %q: %w", img.Name, err)
			}
			r, err = prepare()
		}
		if err != nil {
			return fmt.Errorf("prepare snapshot %q: %w", key, err)
		}
		info.rootfsMounts = mountsFromProto(r.Mounts)
		info.SnapshotKey = key
		info.preparedSnapshot = true
		info.Image = img.Name
		return nil
	}
}

// DefaultRuntimeFor is the namespace's default runtime (label
// containerd.io/defaults/runtime) or the client's.
func (c *Client) DefaultRuntimeFor(ctx context.Context) string {
	if ns, ok := namespaceFrom(c.withNamespace(ctx)); ok {
		if labels, err := c.namespaceDefaults(ctx, ns); err == nil {
			if v := labels["containerd.io/defaults/runtime"]; v != "" {
				return v
			}
		}
	}
	return c.runtime
}

// WithSnapshotCleanup removes the container's snapshot when the container
// is deleted.
func WithSnapshotCleanup(ctx context.Context, c *Client, info ContainerInfo) error {
	if info.SnapshotKey == "" || info.Snapshotter == "" {
		return nil
	}
	_, err := snapshotsapi.NewSnapshotsClient(c.conn).Remove(ctx, &snapshotsapi.RemoveSnapshotRequest{
		Snapshotter: info.Snapshotter, Key: info.SnapshotKey,
	})
	if err != nil && !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		return fmt.Errorf("remove snapshot %q: %w", info.SnapshotKey, errdefs.FromGRPC(err))
	}
	return nil
}

// ResolveUser resolves a user ("uid", "uid:gid", "name", "name:group")
// for a new process in the container, reading names from the container's
// root file system (its snapshot, mounted read-only for the lookup).
func (ct *Container) ResolveUser(ctx context.Context, user string) (specs.User, error) {
	info, err := ct.Info(ctx)
	if err != nil {
		return specs.User{}, err
	}
	s := &specs.Spec{Process: &specs.Process{}}
	ci := &oci.ContainerInfo{ID: ct.id, Snapshotter: info.Snapshotter, SnapshotKey: info.SnapshotKey}
	if info.SnapshotKey != "" {
		ms, err := ct.c.SnapshotService(info.Snapshotter).Mounts(ct.c.withNamespace(ctx), info.SnapshotKey)
		if err != nil {
			return specs.User{}, fmt.Errorf("mounts of snapshot %q: %w", info.SnapshotKey, err)
		}
		mounts := readOnly(ms)
		ci.Layers = rootfsLayers(mounts)
		ci.Rootfs = func(ctx context.Context, fn func(root string) error) error {
			return mount.WithTempMount(ctx, mounts, fn)
		}
	} else if spec, err := ct.Spec(ctx); err == nil && spec.Root != nil {
		ci.Rootfs = oci.RootfsDir(spec.Root.Path)
	}
	if err := oci.WithUser(user)(ctx, ci, s); err != nil {
		return specs.User{}, err
	}
	return s.Process.User, nil
}
