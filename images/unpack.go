package images

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/diff"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/snapshots"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// UnpackConfig configures Unpack.
type UnpackConfig struct {
	// SnapshotterName names the snapshotter in the config blob's GC label
	// (containerd.io/gc.ref.snapshot.NAME); without it no label is set.
	SnapshotterName string
	// ApplyOpts are passed to every Apply.
	ApplyOpts []diff.ApplyOpt
	// SnapshotOpts are passed to every Prepare and Commit.
	SnapshotOpts []snapshots.Opt
	// LayerReady, if set, is called before each layer is unpacked and
	// returns once the layer's blob is in the content store: for an
	// unpack that runs while the image is still being fetched.
	LayerReady func(ctx context.Context, layer ocispec.Descriptor) error
}

// WithLayerReady sets UnpackConfig.LayerReady.
func WithLayerReady(fn func(ctx context.Context, layer ocispec.Descriptor) error) UnpackOpt {
	return func(c *UnpackConfig) error { c.LayerReady = fn; return nil }
}

// UnpackOpt sets UnpackConfig fields.
type UnpackOpt func(*UnpackConfig) error

// WithSnapshotterName sets the snapshotter name used in GC labels.
func WithSnapshotterName(name string) UnpackOpt {
	return func(c *UnpackConfig) error { c.SnapshotterName = name; return nil }
}

// WithApplyOpts adds options for the applier.
func WithApplyOpts(opts ...diff.ApplyOpt) UnpackOpt {
	return func(c *UnpackConfig) error { c.ApplyOpts = append(c.ApplyOpts, opts...); return nil }
}

// WithUnpackSnapshotOpts adds options for Prepare and Commit.
func WithUnpackSnapshotOpts(opts ...snapshots.Opt) UnpackOpt {
	return func(c *UnpackConfig) error { c.SnapshotOpts = append(c.SnapshotOpts, opts...); return nil }
}

// unpackAttempts bounds retries when a racing unpack takes a key first.
const unpackAttempts = 3

// Unpack applies the layers of image's manifest for platform onto sn and
// returns the chain ID of the top snapshot. Each layer becomes a committed
// snapshot named by its chain ID; layers already there are reused, so
// unpacking twice, or twice at once, is safe: the loser of a race removes
// its own work and takes the winner's. An applied layer whose diff ID is
// not the config's is removed and reported. Layer blobs are labelled
// with their diff ID and the config with a GC reference to the snapshot.
func Unpack(ctx context.Context, store content.Store, image ocispec.Descriptor, sn snapshots.Snapshotter, applier diff.Applier, platform platforms.MatchComparer, opts ...UnpackOpt) (digest.Digest, error) {
	var cfg UnpackConfig
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return "", err
		}
	}
	mdesc, m, err := ResolveManifest(ctx, store, image, platform)
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", Describe(image), err)
	}
	config, err := ReadConfig(ctx, store, m.Config)
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", Describe(mdesc), err)
	}
	diffIDs := config.RootFS.DiffIDs
	if len(diffIDs) != len(m.Layers) {
		return "", fmt.Errorf("unpack %s: %d layers but config %s lists %d diff IDs: %w", Describe(mdesc), len(m.Layers), m.Config.Digest, len(diffIDs), errdefs.ErrInvalidArgument)
	}
	if len(m.Layers) == 0 {
		return "", fmt.Errorf("unpack %s: image has no layers: %w", Describe(mdesc), errdefs.ErrInvalidArgument)
	}
	for i, l := range m.Layers {
		if !IsLayerType(l.MediaType) {
			return "", fmt.Errorf("unpack %s: layer %d %s: media type %q is not a layer type: %w", Describe(mdesc), i, l.Digest, truncate(l.MediaType), errdefs.ErrNotImplemented)
		}
	}

	chainIDs := ChainIDs(diffIDs)
	var parent string
	for i, layer := range m.Layers {
		chain := chainIDs[i]
		if cfg.LayerReady != nil {
			if err := cfg.LayerReady(ctx, layer); err != nil {
				return "", fmt.Errorf("unpack %s: layer %d %s: %w", Describe(mdesc), i, layer.Digest, err)
			}
		}
		if err := unpackLayer(ctx, sn, applier, &cfg, layer, diffIDs[i], chain.String(), parent); err != nil {
			return "", fmt.Errorf("unpack %s: layer %d %s: %w", Describe(mdesc), i, layer.Digest, err)
		}
		if err := labelUncompressed(ctx, store, layer, diffIDs[i]); err != nil {
			return "", fmt.Errorf("unpack %s: layer %d: %w", Describe(mdesc), i, err)
		}
		parent = chain.String()
	}

	top := chainIDs[len(chainIDs)-1]
	if cfg.SnapshotterName != "" {
		key := LabelGCRefSnapshot + cfg.SnapshotterName
		info := content.Info{Digest: m.Config.Digest, Labels: map[string]string{key: top.String()}}
		if _, err := store.Update(ctx, info, "labels."+key); err != nil {
			return "", fmt.Errorf("unpack %s: label %s: %w", Describe(mdesc), Describe(m.Config), err)
		}
	}
	return top, nil
}

// unpackLayer makes the committed snapshot chain on top of parent,
// unless it exists.
func unpackLayer(ctx context.Context, sn snapshots.Snapshotter, applier diff.Applier, cfg *UnpackConfig, layer ocispec.Descriptor, diffID digest.Digest, chain, parent string) error {
	labels := map[string]string{LabelSnapshotRef: chain}
	sopts := append([]snapshots.Opt{snapshots.WithLabels(labels)}, cfg.SnapshotOpts...)
	for attempt := 0; attempt < unpackAttempts; attempt++ {
		if _, err := sn.Stat(ctx, chain); err == nil {
			return nil
		} else if !errdefs.IsNotFound(err) {
			return fmt.Errorf("stat snapshot %s: %w", chain, err)
		}

		key, err := extractKey(chain)
		if err != nil {
			return err
		}
		mounts, err := sn.Prepare(ctx, key, parent, sopts...)
		if err != nil {
			if errdefs.IsAlreadyExists(err) {
				// A remote snapshotter made chain for us, or (unlikely) the
				// key was taken: look again.
				continue
			}
			return fmt.Errorf("prepare snapshot %q: %w", key, err)
		}
		// Whatever fails from here leaves nothing half-made behind, even if
		// ctx was cancelled.
		abort := func() {
			if err := sn.Remove(context.WithoutCancel(ctx), key); err != nil && !errdefs.IsNotFound(err) {
				log.G(ctx).WithError(err).WithField("key", key).Warn("remove snapshot of failed unpack")
			}
		}
		applied, err := applier.Apply(ctx, layer, mounts, cfg.ApplyOpts...)
		if err != nil {
			abort()
			return fmt.Errorf("apply: %w", err)
		}
		if applied.Digest != diffID {
			abort()
			return fmt.Errorf("applied layer has diff ID %s but the config says %s: %w", applied.Digest, diffID, errdefs.ErrFailedPrecondition)
		}
		if err := sn.Commit(ctx, chain, key, sopts...); err != nil {
			abort()
			if errdefs.IsAlreadyExists(err) {
				// A concurrent unpack committed chain first; use theirs.
				continue
			}
			return fmt.Errorf("commit snapshot %s: %w", chain, err)
		}
		return nil
	}
	return fmt.Errorf("snapshot %s: still contended after %d attempts: %w", chain, unpackAttempts, errdefs.ErrUnavailable)
}

// extractKey is a fresh key for the active snapshot of one extraction.
func extractKey(chain string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random key: %w", err)
	}
	return "extract-" + hex.EncodeToString(b[:]) + "-" + chain, nil
}

// labelUncompressed records the diff ID on the layer blob, so GC and
// later unpacks know it without reading the layer. A layer not in the
// store (a foreign layer whose snapshot already existed) is skipped.
func labelUncompressed(ctx context.Context, store content.Manager, layer ocispec.Descriptor, diffID digest.Digest) error {
	info, err := store.Info(ctx, layer.Digest)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("label %s: %w", Describe(layer), err)
	}
	if info.Labels[LabelUncompressed] == diffID.String() {
		return nil
	}
	info = content.Info{Digest: layer.Digest, Labels: map[string]string{LabelUncompressed: diffID.String()}}
	if _, err := store.Update(ctx, info, "labels."+LabelUncompressed); err != nil {
		return fmt.Errorf("label %s: %w", Describe(layer), err)
	}
	return nil
}
