package walking

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"time"

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

// LabelUncompressed is the content label naming a compressed layer's diff
// ID, containerd's key so its clients find it.
const LabelUncompressed = "containerd.io/uncompressed"

type comparer struct {
	store content.Store
}

// NewComparer returns a Comparer that writes layers into store.
func NewComparer(store content.Store) diff.Comparer {
	return &comparer{store: store}
}

// Compare writes the changes from lower to upper as a layer blob into the
// content store: gzip-compressed OCI by default, or the media type in the
// config (OCI tar, tar+gzip, tar+zstd, Docker tar.gzip). The blob is
// committed with the config's labels plus LabelUncompressed. lower is
// mounted read-only; an empty lower means an empty tree (a base layer).
func (c *comparer) Compare(ctx context.Context, lower, upper []mount.Mount, opts ...diff.Opt) (ocispec.Descriptor, error) {
	var cfg diff.Config
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("compare: %w", err)
		}
	}
	if cfg.MediaType == "" {
		cfg.MediaType = ocispec.MediaTypeImageLayerGzip
	}
	comp, ok := compareCompression[cfg.MediaType]
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("compare: media type %q: %w", cfg.MediaType, errdefs.ErrNotImplemented)
	}
	ref := cfg.Reference
	if ref == "" {
		ref = uniqueRef()
	}

	w, err := c.store.Writer(ctx, content.WithRef(ref), content.WithDescriptor(ocispec.Descriptor{MediaType: cfg.MediaType}))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("compare: open content writer %q: %w", ref, err)
	}
	committed := false
	defer func() {
		w.Close()
		if !committed {
			if err := c.store.Abort(ctx, ref); err != nil && !errdefs.IsNotFound(err) {
				log.G(ctx).WithError(err).WithField("ref", ref).Warn("compare: abort ingest")
			}
		}
	}()
	// A resumed ref may hold bytes from an earlier attempt.
	if err := w.Truncate(0); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("compare: reset ingest %q: %w", ref, err)
	}

	blobDigest := digest.Canonical.Digester()
	counter := &countingWriter{}
	cw, err := compression.CompressStream(io.MultiWriter(w, blobDigest.Hash(), counter), comp)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("compare: %w", err)
	}
	diffID := digest.Canonical.Digester()
	tarStream := io.MultiWriter(cw, diffID.Hash())

	err = mount.WithTempMount(ctx, readOnly(lower), func(lowerRoot string) error {
		return mount.WithTempMount(ctx, upper, func(upperRoot string) error {
			return archive.WriteDiff(ctx, tarStream, lowerRoot, upperRoot)
		})
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("compare: %w", err)
	}
	if err := cw.Close(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("compare: finish %s stream: %w", comp, err)
	}

	labels := maps.Clone(cfg.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelUncompressed] = diffID.Digest().String()
	desc := ocispec.Descriptor{MediaType: cfg.MediaType, Digest: blobDigest.Digest(), Size: counter.n}
	err = w.Commit(ctx, desc.Size, desc.Digest, content.WithLabels(labels))
	switch {
	case err == nil:
	case errdefs.IsAlreadyExists(err):
		// The same layer was computed before; make sure it carries the
		// labels this call promises.
		if err := c.setLabels(ctx, desc.Digest, labels); err != nil {
			return ocispec.Descriptor{}, err
		}
	default:
		return ocispec.Descriptor{}, fmt.Errorf("compare: commit layer %s: %w", desc.Digest, err)
	}
	committed = true
	return desc, nil
}

func (c *comparer) setLabels(ctx context.Context, dgst digest.Digest, labels map[string]string) error {
	info := content.Info{Digest: dgst, Labels: labels}
	var paths []string
	for k := range labels {
		paths = append(paths, "labels."+k)
	}
	if _, err := c.store.Update(ctx, info, paths...); err != nil {
		return fmt.Errorf("compare: label existing layer %s: %w", dgst, err)
	}
	return nil
}

// readOnly returns mounts with "ro" added where they would mount writable:
// Compare only reads the lower tree.
func readOnly(mounts []mount.Mount) []mount.Mount {
	out := make([]mount.Mount, len(mounts))
	for i, m := range mounts {
		if !mount.ReadOnly(m) {
			m.Options = append(append([]string(nil), m.Options...), "ro")
		}
		out[i] = m
	}
	return out
}

// uniqueRef names an ingest for a Compare that was given none.
func uniqueRef() string {
	return fmt.Sprintf("compare-%d-%s", time.Now().UnixNano(), rand.Text())
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
