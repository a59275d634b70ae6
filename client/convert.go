package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/archive/compression"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/pkg/reference"
)

// Image conversion, as containerd 1.6's `ctr images convert`: an image's
// index, manifests and layers are rewritten into new blobs (the old ones are
// left as they are) and a record names the new root.
//
//   - Platforms: index entries whose platform does not match are dropped
//     (entries without a platform are kept); a single manifest is kept
//     whatever its platform. An index left with no manifest is an error.
//   - OCI: Docker media types (manifest list, manifest, config, layers,
//     foreign layers) become their OCI equivalents, in the descriptors and
//     in the documents' own mediaType fields. Blob contents other than the
//     index and manifests do not change.
//   - Uncompress: gzip and zstd layers are stored decompressed and their
//     descriptors get the plain tar media type, digest and size. The config
//     is unchanged: its diff IDs are digests of the uncompressed tars, and
//     each new layer is checked against its diff ID. Foreign
//     (non-distributable) layers are left compressed; their content is
//     often not in the store at all.
//
// A document is written again only when something in it changed, so a
// conversion that changes nothing yields the source's own root. Written
// indexes and manifests carry the containerd.io/gc.ref.content.* labels
// image import and pull give them (images.SetGCLabels) and the source
// blob's other labels; new layers keep the source layer's labels except
// containerd.io/uncompressed. Everything is written under one lease, held
// until the record exists.

// maxConvertDepth bounds indexes nested in indexes, as images does.
const maxConvertDepth = 8

// convertParallel is how many layers of a manifest are converted at once.
const convertParallel = 3

type convertOpts struct {
	platform   platforms.Matcher
	oci        bool
	uncompress bool
}

// ConvertOpt configures Convert.
type ConvertOpt func(*convertOpts) error

// WithConvertPlatform keeps only index entries for platforms m matches
// (and entries without a platform). Without it every platform is kept.
func WithConvertPlatform(m platforms.Matcher) ConvertOpt {
	return func(o *convertOpts) error { o.platform = m; return nil }
}

// WithConvertOCI converts Docker media types to OCI ones.
func WithConvertOCI() ConvertOpt {
	return func(o *convertOpts) error { o.oci = true; return nil }
}

// WithConvertUncompress stores compressed layers uncompressed.
func WithConvertUncompress() ConvertOpt {
	return func(o *convertOpts) error { o.uncompress = true; return nil }
}

// Convert converts the image named src and creates, or replaces, the image
// named dst with the result; dst gets src's labels. With no options the
// result is src's root unchanged. It returns dst's record.
func (c *Client) Convert(ctx context.Context, dst, src string, opts ...ConvertOpt) (ImageInfo, error) {
	var o convertOpts
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return ImageInfo{}, err
		}
	}
	if src == "" {
		return ImageInfo{}, fmt.Errorf("convert: source image name is empty: %w", errdefs.ErrInvalidArgument)
	}
	if _, err := reference.Parse(dst); err != nil {
		return ImageInfo{}, fmt.Errorf("convert: target: %w", err)
	}
	ctx = c.withNamespace(ctx)
	ctx, done, err := c.WithLease(ctx)
	if err != nil {
		return ImageInfo{}, err
	}
	defer done(context.WithoutCancel(ctx))

	is := c.ImageService()
	srcImg, err := is.Get(ctx, src)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("convert %q: %w", src, err)
	}
	cv := newConverter(c.ContentStore(), o, randomID())
	root, err := cv.convert(ctx, srcImg.Target, 0)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("convert %q: %w", src, err)
	}
	img := ImageInfo{Name: dst, Labels: srcImg.Labels, Target: root}
	out, err := is.Create(ctx, img)
	if errdefs.IsAlreadyExists(err) {
		// Replaced in one step (labels and target), so the collector
		// never sees the name missing.
		out, err = is.Update(ctx, img)
	}
	if err != nil {
		return ImageInfo{}, fmt.Errorf("convert %q: image %q: %w", src, dst, err)
	}
	return out, nil
}

// converter converts one image graph; results are kept per source digest,
// so a blob shared by several manifests is converted once.
type converter struct {
	store content.Store
	opts  convertOpts
	id    string // makes this conversion's ingest refs its own

	mu   sync.Mutex
	done map[string]ocispec.Descriptor // by source media type and digest
}

func newConverter(store content.Store, o convertOpts, id string) *converter {
	return &converter{store: store, opts: o, id: id, done: map[string]ocispec.Descriptor{}}
}

// convert returns desc converted: a copy with the new media type, digest
// and size (platform and annotations kept), or desc itself when nothing
// changes.
func (cv *converter) convert(ctx context.Context, desc ocispec.Descriptor, depth int) (ocispec.Descriptor, error) {
	return cv.convertBlob(ctx, desc, "", depth)
}

// convertBlob is convert; diffID, for a layer, is its config's diff ID
// ("" if unknown).
func (cv *converter) convertBlob(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest, depth int) (ocispec.Descriptor, error) {
	if err := ctx.Err(); err != nil {
		return desc, err
	}
	key := desc.MediaType + "@" + desc.Digest.String()
	cv.mu.Lock()
	got, ok := cv.done[key]
	cv.mu.Unlock()
	if ok {
		return withBlob(desc, got), nil
	}
	var (
		out ocispec.Descriptor
		err error
	)
	switch mt := desc.MediaType; {
	case images.IsIndexType(mt):
		out, err = cv.convertIndex(ctx, desc, depth)
	case images.IsManifestType(mt):
		out, err = cv.convertManifest(ctx, desc)
	case images.IsSchema1Type(mt):
		_, err = images.ParseManifest(desc, nil) // the "schema 1 is not supported" error
	case images.IsLayerType(mt):
		out, err = cv.convertLayer(ctx, desc, diffID)
	default:
		// Configs and blobs of other types keep their content.
		out = desc
		out.MediaType = cv.mediaType(mt)
	}
	if err != nil {
		return desc, err
	}
	cv.mu.Lock()
	cv.done[key] = out
	cv.mu.Unlock()
	return out, nil
}

// withBlob is desc pointing at the converted blob b.
func withBlob(desc, b ocispec.Descriptor) ocispec.Descriptor {
	desc.MediaType, desc.Digest, desc.Size = b.MediaType, b.Digest, b.Size
	return desc
}

// mediaType is mt as it is written: the OCI equivalent with --oci.
func (cv *converter) mediaType(mt string) string {
	if cv.opts.oci {
		return OCIMediaType(mt)
	}
	return mt
}

func (cv *converter) convertIndex(ctx context.Context, desc ocispec.Descriptor, depth int) (ocispec.Descriptor, error) {
	if depth >= maxConvertDepth {
		return desc, fmt.Errorf("%s: indexes nested deeper than %d: %w", images.Describe(desc), maxConvertDepth, errdefs.ErrInvalidArgument)
	}
	p, err := images.ReadBlob(ctx, cv.store, desc)
	if err != nil {
		return desc, err
	}
	idx, err := images.ParseIndex(desc, p)
	if err != nil {
		return desc, err
	}
	newType := cv.mediaType(desc.MediaType)
	modified := newType != desc.MediaType
	if idx.MediaType != "" && idx.MediaType != newType {
		idx.MediaType = newType
		modified = true
	}
	kept := make([]ocispec.Descriptor, 0, len(idx.Manifests))
	for i, m := range idx.Manifests {
		if m.Platform != nil && cv.opts.platform != nil && !cv.opts.platform.Match(*m.Platform) {
			modified = true
			continue
		}
		nm, err := cv.convertBlob(ctx, m, "", depth+1)
		if err != nil {
			return desc, fmt.Errorf("%s: manifests[%d]%s: %w", images.Describe(desc), i, platformSuffix(m.Platform), err)
		}
		if !sameDescriptor(nm, m) {
			modified = true
		}
		kept = append(kept, nm)
	}
	if len(kept) == 0 && len(idx.Manifests) > 0 {
		return desc, fmt.Errorf("%s: no manifest matches the requested platforms: %w", images.Describe(desc), errdefs.ErrNotFound)
	}
	if !modified {
		return desc, nil
	}
	idx.Manifests = kept
	return cv.writeDocument(ctx, desc, newType, idx, kept)
}

func (cv *converter) convertManifest(ctx context.Context, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	p, err := images.ReadBlob(ctx, cv.store, desc)
	if err != nil {
		return desc, err
	}
	m, err := images.ParseManifest(desc, p)
	if err != nil {
		return desc, err
	}
	newType := cv.mediaType(desc.MediaType)
	modified := newType != desc.MediaType
	if m.MediaType != "" && m.MediaType != newType {
		m.MediaType = newType
		modified = true
	}

	// Decompressed layers are checked against the config's diff IDs.
	var diffIDs []digest.Digest
	if cv.opts.uncompress && cv.hasCompressedLayers(m.Layers) && images.IsConfigType(m.Config.MediaType) {
		cfg, err := images.ReadConfig(ctx, cv.store, m.Config)
		if err != nil {
			return desc, err
		}
		if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
			return desc, fmt.Errorf("%s: %d layers but config %s lists %d diff IDs: %w", images.Describe(desc), len(m.Layers), m.Config.Digest, len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
		}
		diffIDs = cfg.RootFS.DiffIDs
	}

	cfg, err := cv.convertBlob(ctx, m.Config, "", 0)
	if err != nil {
		return desc, err
	}
	if !sameDescriptor(cfg, m.Config) {
		m.Config = cfg
		modified = true
	}
	layers := make([]ocispec.Descriptor, len(m.Layers))
	errs := make([]error, len(m.Layers))
	sem := make(chan struct{}, convertParallel)
	var wg sync.WaitGroup
	for i, l := range m.Layers {
		var diffID digest.Digest
		if diffIDs != nil {
			diffID = diffIDs[i]
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			layers[i], errs[i] = cv.convertBlob(ctx, l, diffID, 0)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return desc, err
	}
	for i := range layers {
		if !sameDescriptor(layers[i], m.Layers[i]) {
			modified = true
		}
	}
	if !modified {
		return desc, nil
	}
	m.Layers = layers
	return cv.writeDocument(ctx, desc, newType, m, append([]ocispec.Descriptor{m.Config}, m.Layers...))
}

// platformSuffix names an index entry's platform in messages.
func platformSuffix(p *ocispec.Platform) string {
	if p == nil {
		return ""
	}
	return " (" + platforms.Format(*p) + ")"
}

// hasCompressedLayers reports whether any of layers is to be decompressed.
func (cv *converter) hasCompressedLayers(layers []ocispec.Descriptor) bool {
	for _, l := range layers {
		if UncompressedMediaType(l.MediaType) != l.MediaType && !images.IsNonDistributable(l.MediaType) {
			return true
		}
	}
	return false
}

// sameDescriptor reports whether a and b point at the same blob as the
// same type.
func sameDescriptor(a, b ocispec.Descriptor) bool {
	return a.MediaType == b.MediaType && a.Digest == b.Digest && a.Size == b.Size
}

// convertLayer decompresses a layer (with --uncompress) and maps its media
// type (with --oci). Foreign layers keep their content.
func (cv *converter) convertLayer(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest) (ocispec.Descriptor, error) {
	out := desc
	plain := UncompressedMediaType(desc.MediaType)
	if cv.opts.uncompress && plain != desc.MediaType && !images.IsNonDistributable(desc.MediaType) {
		dgst, size, err := cv.decompress(ctx, desc, diffID)
		if err != nil {
			return desc, err
		}
		out.Digest, out.Size, out.MediaType = dgst, size, plain
		// The uncompressed digest says what it is; an annotation that
		// describes the compressed blob would now be wrong.
		out.URLs = nil
	}
	out.MediaType = cv.mediaType(out.MediaType)
	return out, nil
}

// decompress stores desc's blob decompressed and returns its digest and
// size. With diffID known, the result must have that digest; a blob of
// that digest already in the store is used as it is (the lease then holds
// it).
func (cv *converter) decompress(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest) (digest.Digest, int64, error) {
	info, err := cv.store.Info(ctx, desc.Digest)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", images.Describe(desc), err)
	}
	ref := "convert-" + cv.id + "-uncompress-" + desc.Digest.Encoded()
	wdesc := ocispec.Descriptor{Digest: diffID}
	w, err := cv.store.Writer(ctx, content.WithRef(ref), content.WithDescriptor(wdesc))
	if errdefs.IsAlreadyExists(err) {
		existing, ierr := cv.store.Info(ctx, diffID)
		if ierr != nil {
			return "", 0, fmt.Errorf("%s: uncompressed blob %s: %w", images.Describe(desc), diffID, ierr)
		}
		return diffID, existing.Size, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("%s: open ingest: %w", images.Describe(desc), err)
	}
	abort := func() {
		w.Close()
		if err := cv.store.Abort(context.WithoutCancel(ctx), ref); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("ref", ref).Warn("convert: abort ingest")
		}
	}
	if err := w.Truncate(0); err != nil {
		abort()
		return "", 0, fmt.Errorf("%s: %w", images.Describe(desc), err)
	}
	ra, err := cv.store.ReaderAt(ctx, desc)
	if err != nil {
		abort()
		return "", 0, fmt.Errorf("%s: %w", images.Describe(desc), err)
	}
	defer ra.Close()
	dr, err := compression.DecompressStream(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		abort()
		return "", 0, fmt.Errorf("%s: %w", images.Describe(desc), err)
	}
	defer dr.Close()
	dg := digest.Canonical.Digester()
	n, err := io.Copy(io.MultiWriter(w, dg.Hash()), dr)
	if err != nil {
		abort()
		return "", 0, fmt.Errorf("%s: decompress: %w", images.Describe(desc), err)
	}
	dgst := dg.Digest()
	if diffID != "" && dgst != diffID {
		abort()
		return "", 0, fmt.Errorf("%s: uncompressed content has digest %s, the config's diff ID is %s: %w", images.Describe(desc), dgst, diffID, errdefs.ErrFailedPrecondition)
	}
	if err := w.Commit(ctx, n, dgst, content.WithLabels(layerLabels(info.Labels))); err != nil && !errdefs.IsAlreadyExists(err) {
		abort()
		return "", 0, fmt.Errorf("%s: commit uncompressed blob: %w", images.Describe(desc), err)
	}
	w.Close()
	return dgst, n, nil
}

// layerLabels are the labels a decompressed layer keeps of its source's:
// all but the uncompressed digest, which now is the blob's own.
func layerLabels(src map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range src {
		if k != images.LabelUncompressed {
			out[k] = v
		}
	}
	return out
}

// documentLabels are the labels a rewritten index or manifest keeps of its
// source's: all but the GC references, which SetGCLabels sets anew.
func documentLabels(src map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range src {
		if !strings.HasPrefix(k, images.LabelGCRefContent) {
			out[k] = v
		}
	}
	return out
}

// writeDocument stores doc (an index or manifest converted from src) as a
// blob of type mediaType labelled with GC references to children, and
// returns src's descriptor pointing at it.
func (cv *converter) writeDocument(ctx context.Context, src ocispec.Descriptor, mediaType string, doc any, children []ocispec.Descriptor) (ocispec.Descriptor, error) {
	p, err := json.Marshal(doc)
	if err != nil {
		return src, fmt.Errorf("%s: encode: %w", images.Describe(src), err)
	}
	out := src
	out.MediaType, out.Digest, out.Size = mediaType, digest.FromBytes(p), int64(len(p))
	info, err := cv.store.Info(ctx, src.Digest)
	if err != nil {
		return src, fmt.Errorf("%s: %w", images.Describe(src), err)
	}
	ref := "convert-" + cv.id + "-" + out.Digest.Encoded()
	w, err := cv.store.Writer(ctx, content.WithRef(ref), content.WithDescriptor(out))
	switch {
	case errdefs.IsAlreadyExists(err):
		// Converted before: the lease holds the blob now.
	case err != nil:
		return src, fmt.Errorf("%s: open ingest: %w", images.Describe(out), err)
	default:
		_, err := w.Write(p)
		if err == nil {
			err = w.Commit(ctx, out.Size, out.Digest, content.WithLabels(documentLabels(info.Labels)))
		}
		w.Close()
		if err != nil && !errdefs.IsAlreadyExists(err) {
			if aerr := cv.store.Abort(context.WithoutCancel(ctx), ref); aerr != nil && !errdefs.IsNotFound(aerr) {
				log.G(ctx).WithError(aerr).WithField("ref", ref).Warn("convert: abort ingest")
			}
			return src, fmt.Errorf("%s: write: %w", images.Describe(out), err)
		}
	}
	if err := images.SetGCLabels(ctx, cv.store, out, children); err != nil {
		return src, err
	}
	return out, nil
}

// OCIMediaType is the OCI media type for Docker's mt (manifest list,
// manifest, config, layers and foreign layers); other types are returned
// unchanged.
func OCIMediaType(mt string) string {
	switch mt {
	case images.MediaTypeDockerSchema2ManifestList:
		return ocispec.MediaTypeImageIndex
	case images.MediaTypeDockerSchema2Manifest:
		return ocispec.MediaTypeImageManifest
	case images.MediaTypeDockerSchema2Config:
		return ocispec.MediaTypeImageConfig
	case images.MediaTypeDockerSchema2Layer:
		return ocispec.MediaTypeImageLayer
	case images.MediaTypeDockerSchema2LayerGzip:
		return ocispec.MediaTypeImageLayerGzip
	case images.MediaTypeDockerSchema2LayerZstd:
		return ocispec.MediaTypeImageLayerZstd
	case images.MediaTypeDockerSchema2LayerForeign:
		return ocispec.MediaTypeImageLayerNonDistributable //nolint:staticcheck // what containerd converts foreign layers to
	case images.MediaTypeDockerSchema2LayerForeignGzip:
		return ocispec.MediaTypeImageLayerNonDistributableGzip //nolint:staticcheck
	}
	return mt
}

// UncompressedMediaType is the media type of a compressed layer type mt
// once decompressed, in the same family (Docker, OCI, foreign); other
// types, uncompressed layers included, are returned unchanged.
func UncompressedMediaType(mt string) string {
	switch mt {
	case images.MediaTypeDockerSchema2LayerGzip, images.MediaTypeDockerSchema2LayerZstd:
		return images.MediaTypeDockerSchema2Layer
	case images.MediaTypeDockerSchema2LayerForeignGzip:
		return images.MediaTypeDockerSchema2LayerForeign
	case ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd:
		return ocispec.MediaTypeImageLayer
	case ocispec.MediaTypeImageLayerNonDistributableGzip, ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck
		return ocispec.MediaTypeImageLayerNonDistributable //nolint:staticcheck
	}
	return mt
}
