package walking

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-containers/berth/archive"
	"github.com/berth-containers/berth/archive/compression"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/diff"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type applier struct {
	store   content.Provider
	maxSize int64
}

// ApplierOpt configures NewApplier.
type ApplierOpt func(*applier)

// WithMaxLayerSize bounds the uncompressed size of each layer Apply
// unpacks (archive.WithMaxSize), so a decompression bomb fails instead of
// filling the disk. 0 (the default) means no bound.
func WithMaxLayerSize(n int64) ApplierOpt {
	return func(a *applier) { a.maxSize = n }
}

// NewApplier returns an Applier that reads layer blobs from store.
func NewApplier(store content.Provider, opts ...ApplierOpt) diff.Applier {
	a := &applier{store: store}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Apply unpacks the layer blob desc onto mounts and returns the descriptor
// of the uncompressed layer: its media type, diff ID and size. The blob is
// checked against desc's digest (and size, when given) as it is read; on a
// mismatch Apply fails, having unpacked it already, so the caller must
// discard the target as on any Apply error.
func (a *applier) Apply(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount, opts ...diff.ApplyOpt) (ocispec.Descriptor, error) {
	var cfg diff.ApplyConfig
	for _, o := range opts {
		if err := o(ctx, desc, &cfg); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("apply layer %s: %w", desc.Digest, err)
		}
	}
	if !layerMediaTypes[desc.MediaType] {
		return ocispec.Descriptor{}, fmt.Errorf("apply layer %s: media type %q: %w", desc.Digest, desc.MediaType, errdefs.ErrNotImplemented)
	}
	if err := desc.Digest.Validate(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("apply layer %q: digest: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	ra, err := a.store.ReaderAt(ctx, desc)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("apply layer %s: open blob: %w", desc.Digest, err)
	}
	defer ra.Close()
	if desc.Size > 0 && ra.Size() != desc.Size {
		return ocispec.Descriptor{}, fmt.Errorf("apply layer %s: blob is %d bytes, descriptor says %d: %w",
			desc.Digest, ra.Size(), desc.Size, errdefs.ErrFailedPrecondition)
	}

	// Everything read from the blob is hashed to check desc.Digest, and
	// everything decompressed is hashed into the diff ID.
	verifier := desc.Digest.Verifier()
	blob := io.TeeReader(io.NewSectionReader(ra, 0, ra.Size()), verifier)
	layer, err := compression.DecompressStream(blob)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("apply layer %s: %w", desc.Digest, err)
	}
	defer layer.Close()
	diffID := digest.Canonical.Digester()
	tarStream := io.TeeReader(layer, diffID.Hash())

	var applyOpts []archive.ApplyOpt
	if a.maxSize > 0 {
		applyOpts = append(applyOpts, archive.WithMaxSize(a.maxSize))
	}
	var size int64
	err = mount.WithTempMount(ctx, mounts, func(root string) error {
		var err error
		size, err = archive.Apply(ctx, root, tarStream, applyOpts...)
		return err
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("apply layer %s: %w", desc.Digest, err)
	}
	// The decompressor may stop before the end of the blob (a gzip
	// member's trailing bytes); read the rest so the check covers it all.
	if _, err := io.Copy(io.Discard, blob); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("apply layer %s: read blob: %w", desc.Digest, err)
	}
	if !verifier.Verified() {
		return ocispec.Descriptor{}, fmt.Errorf("apply layer %s: blob content does not match its digest: %w", desc.Digest, errdefs.ErrFailedPrecondition)
	}
	out := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID.Digest(), Size: size}
	log.G(ctx).WithField("layer", desc.Digest).WithField("diff_id", out.Digest).Debug("applied layer")
	return out, nil
}
