package client

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	runcoptions "github.com/berth-containers/berth/api/runtime/runc/options"
	tasksapi "github.com/berth-containers/berth/api/services/tasks/v1"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/diff"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/typeurl"
	"github.com/berth-containers/berth/snapshots"
)

// Media types and annotations of a container checkpoint image, as
// containerd 1.6 writes and reads them. A checkpoint image's target is an
// OCI index whose annotations name the container's image, runtime and
// snapshotter, and whose "manifests" are the checkpoint's blobs.
const (
	// MediaTypeCheckpointConfig is the container's spec, a protobuf Any.
	MediaTypeCheckpointConfig = "application/vnd.containerd.container.checkpoint.config.v1+proto"
	// MediaTypeCheckpointOptions is the task checkpoint's options, a protobuf Any.
	MediaTypeCheckpointOptions = "application/vnd.containerd.container.checkpoint.options.v1+proto"
	// MediaTypeCheckpointRuntimeOptions is the container's runtime options, a protobuf Any.
	MediaTypeCheckpointRuntimeOptions = "application/vnd.containerd.container.checkpoint.runtime.options+proto"
	// MediaTypeCheckpointCRIU is a task's CRIU image (only a daemon that checkpoints tasks writes it).
	MediaTypeCheckpointCRIU = "application/vnd.containerd.container.criu.checkpoint.criu.tar"

	// CheckpointImageNameAnnotation names the image the container was made from.
	CheckpointImageNameAnnotation = ocispec.AnnotationRefName
	// CheckpointRuntimeAnnotation names the container's runtime.
	CheckpointRuntimeAnnotation = "io.containerd.checkpoint.runtime"
	// CheckpointSnapshotterAnnotation names the container's snapshotter.
	CheckpointSnapshotterAnnotation = "io.containerd.checkpoint.snapshotter"
)

// checkpointConfig is what Checkpoint includes beyond the container's spec
// and runtime, which are always in.
type checkpointConfig struct {
	image, rw, task bool
}

// CheckpointOpt adds a part to a container checkpoint.
type CheckpointOpt func(*checkpointConfig)

// WithCheckpointImage includes the container's image (its index or
// manifest) in the checkpoint.
func WithCheckpointImage(c *checkpointConfig) { c.image = true }

// WithCheckpointRW includes the container's writable layer: the difference
// of its snapshot from its parent, as a gzip layer.
func WithCheckpointRW(c *checkpointConfig) { c.rw = true }

// WithCheckpointTask checkpoints the container's task (Tasks.Checkpoint)
// and includes what the daemon returns. berthd answers NotImplemented.
func WithCheckpointTask(c *checkpointConfig) { c.task = true }

// Checkpoint writes an OCI index describing the container to the content
// store and creates image ref pointing at it, as containerd 1.6's
// Container.Checkpoint does. Everything is written under a lease and the
// image is created last, so a failure leaves nothing behind. Unlike
// containerd's, the spec is in the index even without a task checkpoint,
// so a restore without --live needs no CRIU.
func (ct *Container) Checkpoint(ctx context.Context, ref string, opts ...CheckpointOpt) (*Image, error) {
	var cfg checkpointConfig
	for _, o := range opts {
		o(&cfg)
	}
	if ref == "" {
		return nil, fmt.Errorf("checkpoint: image name must be provided: %w", errdefs.ErrInvalidArgument)
	}
	c := ct.c
	ctx = c.withNamespace(ctx)
	info, err := ct.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Image == "" {
		return nil, fmt.Errorf("checkpoint container %q: it has no image: %w", ct.id, errdefs.ErrFailedPrecondition)
	}
	img, err := c.ImageService().Get(ctx, info.Image)
	if err != nil {
		return nil, fmt.Errorf("checkpoint container %q: image %q: %w", ct.id, info.Image, err)
	}
	if info.Spec == nil {
		return nil, fmt.Errorf("checkpoint container %q: it has no spec: %w", ct.id, errdefs.ErrFailedPrecondition)
	}
	if cfg.rw && info.SnapshotKey == "" {
		return nil, fmt.Errorf("checkpoint container %q: --rw: it has no snapshot: %w", ct.id, errdefs.ErrFailedPrecondition)
	}

	ctx, done, err := c.WithLease(ctx)
	if err != nil {
		return nil, err
	}
	defer done(context.WithoutCancel(ctx))

	index := ocispec.Index{
		Annotations: map[string]string{
			CheckpointImageNameAnnotation:   img.Name,
			CheckpointRuntimeAnnotation:     info.Runtime.Name,
			CheckpointSnapshotterAnnotation: info.Snapshotter,
		},
	}
	index.SchemaVersion = 2
	store := c.ContentStore()
	hostPlatform := &ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}

	// The task first: it is the part most likely to be refused, and
	// nothing else has been written yet when it is.
	var taskDescs []ocispec.Descriptor
	if cfg.task {
		copts, err := typeurl.MarshalAny(&runcoptions.CheckpointOptions{FileLocks: true})
		if err != nil {
			return nil, err
		}
		r, err := c.TaskService().Checkpoint(ctx, &tasksapi.CheckpointTaskRequest{ContainerId: ct.id, Options: copts})
		if err != nil {
			return nil, errdefs.FromGRPC(err) // names the task
		}
		for _, d := range r.Descriptors {
			desc := descFromProto(d)
			desc.Platform = hostPlatform
			taskDescs = append(taskDescs, desc)
		}
		data, err := proto.Marshal(copts)
		if err != nil {
			return nil, err
		}
		desc, err := writeCheckpointBlob(ctx, store, ct.id+"-checkpoint-options", MediaTypeCheckpointOptions, data)
		if err != nil {
			return nil, err
		}
		desc.Platform = hostPlatform
		taskDescs = append(taskDescs, desc)
	}

	if info.Runtime.Options != nil {
		data, err := proto.Marshal(info.Runtime.Options)
		if err != nil {
			return nil, fmt.Errorf("encode runtime options: %w", err)
		}
		desc, err := writeCheckpointBlob(ctx, store, ct.id+"-runtime-options", MediaTypeCheckpointRuntimeOptions, data)
		if err != nil {
			return nil, err
		}
		desc.Platform = hostPlatform
		index.Manifests = append(index.Manifests, desc)
	}
	if cfg.image {
		index.Manifests = append(index.Manifests, img.Target)
	}
	if cfg.rw {
		desc, err := c.snapshotDiff(ctx, info.Snapshotter, info.SnapshotKey, "checkpoint-rw-"+info.SnapshotKey)
		if err != nil {
			return nil, fmt.Errorf("checkpoint container %q: rw layer: %w", ct.id, err)
		}
		desc.Platform = hostPlatform
		index.Manifests = append(index.Manifests, desc)
	}
	index.Manifests = append(index.Manifests, taskDescs...)
	if findDescriptor(index.Manifests, MediaTypeCheckpointConfig) == nil {
		data, err := proto.Marshal(info.Spec)
		if err != nil {
			return nil, fmt.Errorf("encode spec: %w", err)
		}
		desc, err := writeCheckpointBlob(ctx, store, ct.id+"-spec", MediaTypeCheckpointConfig, data)
		if err != nil {
			return nil, err
		}
		desc.Platform = hostPlatform
		index.Manifests = append(index.Manifests, desc)
	}

	data, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}
	target, err := writeCheckpointBlob(ctx, store, ct.id+"index", ocispec.MediaTypeImageIndex, data)
	if err != nil {
		return nil, err
	}
	if err := images.SetGCLabels(ctx, store, target, index.Manifests); err != nil {
		return nil, err
	}
	created, err := c.ImageService().Create(ctx, ImageInfo{Name: ref, Target: target})
	if err != nil {
		return nil, fmt.Errorf("create checkpoint image %q: %w", ref, err)
	}
	return NewImage(c, created), nil
}

// snapshotDiff writes the difference of snapshot key from its parent to
// the content store as a gzip layer (the diff service's default).
func (c *Client) snapshotDiff(ctx context.Context, snapshotter, key, ref string) (ocispec.Descriptor, error) {
	sn := c.SnapshotService(snapshotter)
	sinfo, err := sn.Stat(ctx, key)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("snapshot %q: %w", key, err)
	}
	viewKey := fmt.Sprintf("%s-checkpoint-view-%s", key, randomID())
	lower, err := sn.View(ctx, viewKey, sinfo.Parent)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("view parent of snapshot %q: %w", key, err)
	}
	defer sn.Remove(context.WithoutCancel(ctx), viewKey)
	var upper []mount.Mount
	if sinfo.Kind == snapshots.KindActive || sinfo.Kind == snapshots.KindView {
		upper, err = sn.Mounts(ctx, key)
	} else {
		upperKey := viewKey + "-upper"
		upper, err = sn.View(ctx, upperKey, key)
		defer sn.Remove(context.WithoutCancel(ctx), upperKey)
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("mounts of snapshot %q: %w", key, err)
	}
	return c.DiffService().Compare(ctx, lower, readOnly(upper), func(cfg *diff.Config) error {
		cfg.MediaType, cfg.Reference = ocispec.MediaTypeImageLayerGzip, ref
		return nil
	})
}

// writeCheckpointBlob stores data as a blob of media type mt (one already
// there is fine) and returns its descriptor.
func writeCheckpointBlob(ctx context.Context, store content.Store, ref, mt string, data []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
	w, err := store.Writer(ctx, content.WithRef(ref), content.WithDescriptor(desc))
	if errdefs.IsAlreadyExists(err) {
		return desc, nil
	}
	if err != nil {
		return desc, fmt.Errorf("write %s: %w", mt, err)
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		store.Abort(context.WithoutCancel(ctx), ref)
		return desc, fmt.Errorf("write %s: %w", mt, err)
	}
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil && !errdefs.IsAlreadyExists(err) {
		store.Abort(context.WithoutCancel(ctx), ref)
		return desc, fmt.Errorf("commit %s: %w", mt, err)
	}
	return desc, nil
}

func findDescriptor(descs []ocispec.Descriptor, mt string) *ocispec.Descriptor {
	for i := range descs {
		if descs[i].MediaType == mt {
			return &descs[i]
		}
	}
	return nil
}

// restoreConfig is what Restore brings back beyond the spec, runtime and
// image, which are always restored.
type restoreConfig struct {
	rw bool
}

// RestoreOpt selects a part of a checkpoint to restore.
type RestoreOpt func(*restoreConfig)

// WithRestoreRW applies the checkpoint's rw layer onto the new container's
// snapshot.
func WithRestoreRW(c *restoreConfig) { c.rw = true }

// Checkpoint is a checkpoint image's index, read.
type Checkpoint struct {
	Index       ocispec.Index
	Image       string
	Runtime     string
	Snapshotter string
}

// ReadCheckpoint reads and checks the index a checkpoint image points at.
func (c *Client) ReadCheckpoint(ctx context.Context, checkpoint *Image) (Checkpoint, error) {
	ctx = c.withNamespace(ctx)
	name, target := checkpoint.Name(), checkpoint.Target()
	if !images.IsIndexType(target.MediaType) {
		return Checkpoint{}, fmt.Errorf("image %q is not a checkpoint: its target is a %s, not an index: %w", name, target.MediaType, errdefs.ErrInvalidArgument)
	}
	p, err := images.ReadBlob(ctx, c.ContentStore(), target)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %q: %w", name, err)
	}
	idx, err := images.ParseIndex(target, p)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %q: %w", name, err)
	}
	cp := Checkpoint{
		Index:       idx,
		Image:       idx.Annotations[CheckpointImageNameAnnotation],
		Runtime:     idx.Annotations[CheckpointRuntimeAnnotation],
		Snapshotter: idx.Annotations[CheckpointSnapshotterAnnotation],
	}
	if _, ok := idx.Annotations[CheckpointRuntimeAnnotation]; !ok {
		return Checkpoint{}, fmt.Errorf("image %q is not a checkpoint: its index has no %s annotation: %w", name, CheckpointRuntimeAnnotation, errdefs.ErrInvalidArgument)
	}
	if cp.Image == "" {
		return Checkpoint{}, fmt.Errorf("checkpoint %q: no image name (%s annotation): %w", name, CheckpointImageNameAnnotation, errdefs.ErrInvalidArgument)
	}
	if cp.Snapshotter == "" {
		return Checkpoint{}, fmt.Errorf("checkpoint %q: no snapshotter (%s annotation): %w", name, CheckpointSnapshotterAnnotation, errdefs.ErrInvalidArgument)
	}
	return cp, nil
}

// readAny reads a blob holding a protobuf Any.
func (c *Client) readAny(ctx context.Context, desc ocispec.Descriptor) (*anypb.Any, error) {
	p, err := images.ReadBlob(ctx, c.ContentStore(), desc)
	if err != nil {
		return nil, err
	}
	var a anypb.Any
	if err := proto.Unmarshal(p, &a); err != nil {
		return nil, fmt.Errorf("decode %s: %w", desc.MediaType, err)
	}
	return &a, nil
}

// Restore creates container id from a checkpoint image, as containerd
// 1.6's Client.Restore with its image, spec and runtime options (and rw
// with WithRestoreRW): a new snapshot id on the checkpointed container's
// image in its snapshotter, its spec, its runtime and runtime options.
// Everything is checked and read before the container is created; a
// failure removes the snapshot again.
func (c *Client) Restore(ctx context.Context, id string, checkpoint *Image, opts ...RestoreOpt) (*Container, error) {
	var cfg restoreConfig
	for _, o := range opts {
		o(&cfg)
	}
	ctx = c.withNamespace(ctx)
	cp, err := c.ReadCheckpoint(ctx, checkpoint)
	if err != nil {
		return nil, err
	}
	specDesc := findDescriptor(cp.Index.Manifests, MediaTypeCheckpointConfig)
	if specDesc == nil {
		return nil, fmt.Errorf("checkpoint %q has no container spec (%s): %w", checkpoint.Name(), MediaTypeCheckpointConfig, errdefs.ErrNotFound)
	}
	spec, err := c.readAny(ctx, *specDesc)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %q: spec: %w", checkpoint.Name(), err)
	}
	var runtimeOptions *anypb.Any
	if d := findDescriptor(cp.Index.Manifests, MediaTypeCheckpointRuntimeOptions); d != nil {
		if runtimeOptions, err = c.readAny(ctx, *d); err != nil {
			return nil, fmt.Errorf("checkpoint %q: runtime options: %w", checkpoint.Name(), err)
		}
	}
	var rw *ocispec.Descriptor
	if cfg.rw {
		if rw = findDescriptor(cp.Index.Manifests, ocispec.MediaTypeImageLayerGzip); rw == nil {
			return nil, fmt.Errorf("checkpoint %q has no rw layer (checkpoint with --rw): %w", checkpoint.Name(), errdefs.ErrNotFound)
		}
	}
	img, err := c.ResolveImage(ctx, cp.Image, nil)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %q: %w", checkpoint.Name(), err)
	}

	ctx, done, err := c.WithLease(ctx)
	if err != nil {
		return nil, err
	}
	defer done(context.WithoutCancel(ctx))

	copts := []NewContainerOpts{
		WithSnapshotter(cp.Snapshotter),
		WithNewSnapshot(id, img),
		func(_ context.Context, _ *Client, info *ContainerInfo) error {
			info.Spec = spec
			info.Runtime = RuntimeInfo{Name: cp.Runtime, Options: runtimeOptions}
			return nil
		},
	}
	if rw != nil {
		copts = append(copts, func(ctx context.Context, c *Client, info *ContainerInfo) error {
			mounts := info.rootfsMounts
			if len(mounts) == 0 {
				var err error
				if mounts, err = c.SnapshotService(info.Snapshotter).Mounts(ctx, info.SnapshotKey); err != nil {
					return err
				}
			}
			if _, err := c.DiffService().Apply(ctx, *rw, mounts); err != nil {
				return fmt.Errorf("apply rw layer of checkpoint %q: %w", checkpoint.Name(), err)
			}
			return nil
		})
	}
	return c.NewContainer(ctx, id, copts...)
}
