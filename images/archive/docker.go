package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/berth-containers/berth/archive/compression"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// dockerManifestEntry is one image of a docker save manifest.json.
type dockerManifestEntry struct {
	Config       string
	RepoTags     []string
	Layers       []string
	LayerSources map[digest.Digest]ocispec.Descriptor `json:",omitempty"`
}

// finishDocker turns each manifest.json entry into a Docker schema 2
// manifest in the store, with its config and layers as they were saved.
func (im *importer) finishDocker(ctx context.Context) ([]ImageRecord, error) {
	var entries []dockerManifestEntry
	if err := json.Unmarshal(im.files[dockerManifestFile], &entries); err != nil {
		return nil, invalidf("%s: invalid JSON: %v", dockerManifestFile, err)
	}
	if len(entries) == 0 {
		return nil, invalidf("%s lists no images", dockerManifestFile)
	}
	var (
		records   []ImageRecord
		manifests []ocispec.Descriptor
	)
	for i, e := range entries {
		mdesc, err := im.dockerImage(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("%s: image %d: %w", dockerManifestFile, i, err)
		}
		manifests = append(manifests, mdesc)
		for _, tag := range e.RepoTags {
			n, err := reference.ParseDockerRef(tag)
			if err != nil {
				return nil, fmt.Errorf("%s: image %d: RepoTags: %w", dockerManifestFile, i, err)
			}
			records = append(records, ImageRecord{Name: n.String(), Target: mdesc})
		}
		if im.opts.digestName(len(e.RepoTags)) {
			records = append(records, ImageRecord{Name: im.opts.baseName + "@" + mdesc.Digest.String(), Target: mdesc})
		}
	}
	if im.opts.indexName != "" {
		idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
		p, err := json.Marshal(idx)
		if err != nil {
			return nil, err
		}
		desc, err := im.writeBytes(ctx, ocispec.MediaTypeImageIndex, p)
		if err != nil {
			return nil, err
		}
		if err := images.SetGCLabels(ctx, im.store, desc, manifests); err != nil {
			return nil, err
		}
		records = append(records, ImageRecord{Name: im.opts.indexName, Target: desc})
	}
	return records, nil
}

func (im *importer) dockerImage(ctx context.Context, e dockerManifestEntry) (ocispec.Descriptor, error) {
	cfgBytes, err := im.smallFile(ctx, e.Config)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("config: %w", err)
	}
	cfgDesc, err := im.writeBytes(ctx, images.MediaTypeDockerSchema2Config, cfgBytes)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfg, err := images.ParseConfig(cfgDesc, cfgBytes)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(e.Layers) {
		return ocispec.Descriptor{}, invalidf("%d layers but config %s lists %d diff IDs", len(e.Layers), cfgDesc.Digest, len(diffIDs))
	}
	layers := make([]ocispec.Descriptor, len(e.Layers))
	for i, lp := range e.Layers {
		l, err := im.dockerLayer(ctx, lp, diffIDs[i], e.LayerSources)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %d %q: %w", i, lp, err)
		}
		layers[i] = l
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: images.MediaTypeDockerSchema2Manifest,
		Config:    cfgDesc,
		Layers:    layers,
	}
	p, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	mdesc, err := im.writeBytes(ctx, images.MediaTypeDockerSchema2Manifest, p)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := images.SetGCLabels(ctx, im.store, mdesc, append([]ocispec.Descriptor{cfgDesc}, layers...)); err != nil {
		return ocispec.Descriptor{}, err
	}
	if cfg.OS != "" && cfg.Architecture != "" {
		p := images.ConfigPlatform(cfg)
		mdesc.Platform = &p
	}
	return mdesc, nil
}

// blobPath returns the digest of a blobs/ALG/HEX path, or "".
func blobPath(p string) digest.Digest {
	rest, ok := strings.CutPrefix(p, ocispec.ImageBlobsDir+"/")
	if !ok {
		return ""
	}
	alg, enc, ok := strings.Cut(rest, "/")
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
	if !ok || d.Validate() != nil {
		return ""
	}
	return d
}

// smallFile returns the content of a JSON file the manifest names, from
// memory or from the store.
func (im *importer) smallFile(ctx context.Context, name string) ([]byte, error) {
	p, err := im.resolve(name)
	if err != nil {
		return nil, err
	}
	if b, ok := im.files[p]; ok {
		return b, nil
	}
	var d digest.Digest
	if im.blobs[p] {
		d = blobPath(p)
	} else if s, ok := im.streamed[p]; ok {
		d = s.digest
	}
	if d == "" {
		return nil, fmt.Errorf("%q is missing from the archive: %w", name, errdefs.ErrNotFound)
	}
	info, err := im.store.Info(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", name, err)
	}
	return images.ReadBlob(ctx, im.store, ocispec.Descriptor{MediaType: images.MediaTypeDockerSchema2Config, Digest: d, Size: info.Size})
}

// dockerLayer finds a layer file and describes it with the media type its
// compression calls for; an uncompressed layer must be its diff ID.
func (im *importer) dockerLayer(ctx context.Context, name string, diffID digest.Digest, sources map[digest.Digest]ocispec.Descriptor) (ocispec.Descriptor, error) {
	p, err := im.resolve(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var s streamed
	switch {
	case im.streamed[p] != (streamed{}):
		s = im.streamed[p]
	case im.blobs[p]:
		s.digest = blobPath(p)
		info, err := im.store.Info(ctx, s.digest)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		s.size = info.Size
		if s.compression, err = im.sniffStored(ctx, s.digest); err != nil {
			return ocispec.Descriptor{}, err
		}
	default:
		// Foreign layers are left out of the archive and described here.
		if src, ok := sources[diffID]; ok {
			if err := images.ValidateDescriptor(src); err != nil {
				return ocispec.Descriptor{}, err
			}
			if !images.IsLayerType(src.MediaType) {
				return ocispec.Descriptor{}, fmt.Errorf("LayerSources: media type %q is not a layer: %w", src.MediaType, errdefs.ErrNotImplemented)
			}
			return src, nil
		}
		return ocispec.Descriptor{}, fmt.Errorf("file is missing from the archive: %w", errdefs.ErrNotFound)
	}
	desc := ocispec.Descriptor{Digest: s.digest, Size: s.size}
	switch s.compression {
	case images.Gzip:
		desc.MediaType = images.MediaTypeDockerSchema2LayerGzip
	case images.Zstd:
		desc.MediaType = ocispec.MediaTypeImageLayerZstd
	default:
		desc.MediaType = images.MediaTypeDockerSchema2Layer
		if desc.Digest != diffID {
			return desc, invalidf("uncompressed layer has digest %s but the config's diff ID is %s", desc.Digest, diffID)
		}
		if im.opts.compressBlobs {
			return im.compressLayer(ctx, desc)
		}
	}
	return desc, nil
}

// compressLayer stores the uncompressed layer desc gzipped and describes
// the compressed blob, labelled with its diff ID so that unpacking knows
// it without decompressing. The uncompressed blob is left to garbage
// collection once nothing names it.
func (im *importer) compressLayer(ctx context.Context, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	ra, err := im.store.ReaderAt(ctx, desc)
	if err != nil {
		return desc, fmt.Errorf("compress layer %s: %w", desc.Digest, err)
	}
	defer ra.Close()
	ref := "import-" + im.uid + "-gzip-" + desc.Digest.Encoded()
	w, err := im.store.Writer(ctx, content.WithRef(ref))
	if err != nil {
		return desc, fmt.Errorf("compress layer %s: open ingest: %w", desc.Digest, err)
	}
	abort := func() {
		w.Close()
		if err := im.store.Abort(context.WithoutCancel(ctx), ref); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("ref", ref).Warn("import: abort ingest")
		}
	}
	dg := digest.Canonical.Digester()
	cw := &countingWriter{w: io.MultiWriter(w, dg.Hash())}
	zw, err := compression.CompressStream(cw, compression.Gzip)
	if err == nil {
		_, err = io.Copy(zw, io.NewSectionReader(ra, 0, desc.Size))
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		abort()
		return desc, fmt.Errorf("compress layer %s: %w", desc.Digest, err)
	}
	gz := ocispec.Descriptor{MediaType: images.MediaTypeDockerSchema2LayerGzip, Digest: dg.Digest(), Size: cw.n}
	labels := map[string]string{images.LabelUncompressed: desc.Digest.String()}
	if err := w.Commit(ctx, gz.Size, gz.Digest, content.WithLabels(labels)); err != nil {
		if !errdefs.IsAlreadyExists(err) {
			abort()
			return desc, fmt.Errorf("compress layer %s: %w", desc.Digest, err)
		}
		w.Close()
	}
	return gz, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (im *importer) sniffStored(ctx context.Context, d digest.Digest) (images.Compression, error) {
	ra, err := im.store.ReaderAt(ctx, ocispec.Descriptor{Digest: d})
	if err != nil {
		return images.Uncompressed, fmt.Errorf("blob %s: %w", d, err)
	}
	defer ra.Close()
	magic := make([]byte, 4)
	n, err := ra.ReadAt(magic, 0)
	if err != nil && err != io.EOF {
		return images.Uncompressed, fmt.Errorf("blob %s: %w", d, err)
	}
	return sniff(magic[:n]), nil
}
