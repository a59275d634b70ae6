package archive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Export writes images as an OCI image layout tar to w: oci-layout and
// index.json first (so Import can skip what it does not want without
// buffering), a docker-compatible manifest.json for the images that come
// down to one manifest for the platform, then every blob once: indexes
// and manifests first, then configs and layers. Indexes are exported whole but only the selected platforms'
// manifests are followed (WithPlatform, default this host;
// WithAllPlatforms). Foreign layers missing from provider are left out;
// any other missing blob is an error. Output is deterministic.
func Export(ctx context.Context, provider content.Provider, w io.Writer, imgs []ExportImage, opts ...Opt) error {
	o, err := newOptions(opts)
	if err != nil {
		return err
	}
	if len(imgs) == 0 {
		return fmt.Errorf("export: no images: %w", errdefs.ErrInvalidArgument)
	}
	e := &exporter{provider: provider, opts: o, seen: map[digest.Digest]bool{}}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{},
	}
	var docker dockerManifests
	for _, img := range imgs {
		if err := images.ValidateDescriptor(img.Target); err != nil {
			return fmt.Errorf("export %q: %w", img.Name, err)
		}
		entry := img.Target
		entry.Annotations = copyAnnotations(entry.Annotations)
		if img.Name != "" {
			entry.Annotations[images.AnnotationImageName] = img.Name
			if n, err := reference.Parse(img.Name); err == nil && n.Tag() != "" {
				entry.Annotations[ocispec.AnnotationRefName] = n.Tag()
			}
		}
		if len(entry.Annotations) == 0 {
			entry.Annotations = nil
		}
		index.Manifests = append(index.Manifests, entry)

		if err := images.Walk(ctx, images.HandlerFunc(e.collect), img.Target); err != nil {
			return fmt.Errorf("export %q: %w", img.Name, err)
		}
		if !o.skipDockerManifest {
			if err := e.dockerEntry(ctx, &docker, img); err != nil {
				return fmt.Errorf("export %q: %w", img.Name, err)
			}
		}
	}

	tw := tar.NewWriter(w)
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := writeFile(tw, ocispec.ImageLayoutFile, layout); err != nil {
		return err
	}
	idx, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if err := writeFile(tw, ocispec.ImageIndexFile, idx); err != nil {
		return err
	}
	if len(docker.entries) > 0 {
		p, err := json.Marshal(docker.entries)
		if err != nil {
			return err
		}
		if err := writeFile(tw, dockerManifestFile, p); err != nil {
			return err
		}
	}
	if err := writeDir(tw, ocispec.ImageBlobsDir+"/"); err != nil {
		return err
	}
	dirs := map[digest.Algorithm]bool{}
	for _, desc := range e.ordered() {
		if alg := desc.Digest.Algorithm(); !dirs[alg] {
			dirs[alg] = true
			if err := writeDir(tw, ocispec.ImageBlobsDir+"/"+string(alg)+"/"); err != nil {
				return err
			}
		}
		if err := e.writeBlob(ctx, tw, desc); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

type exporter struct {
	provider content.Provider
	opts     options
	seen     map[digest.Digest]bool
	blobs    []ocispec.Descriptor
}

// collect records each blob once and returns the children to follow.
func (e *exporter) collect(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	if e.seen[desc.Digest] {
		return nil, images.ErrSkipDesc
	}
	if images.IsNonDistributable(desc.MediaType) {
		if e.opts.skipNonDistributable {
			return nil, images.ErrSkipDesc
		}
		ra, err := e.provider.ReaderAt(ctx, desc)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return nil, images.ErrSkipDesc
			}
			return nil, err
		}
		ra.Close()
	}
	e.seen[desc.Digest] = true
	e.blobs = append(e.blobs, desc)
	return images.FilterPlatforms(images.ChildrenHandler(e.provider), e.opts.platform)(ctx, desc)
}

// ordered lists indexes and manifests before configs and layers, each
// group in walk order, so an importer knows every document, and so what
// it may skip, before the first large blob arrives.
func (e *exporter) ordered() []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, 0, len(e.blobs))
	for _, d := range e.blobs {
		if images.IsIndexType(d.MediaType) || images.IsManifestType(d.MediaType) {
			out = append(out, d)
		}
	}
	for _, d := range e.blobs {
		if !images.IsIndexType(d.MediaType) && !images.IsManifestType(d.MediaType) {
			out = append(out, d)
		}
	}
	return out
}

type dockerManifests struct {
	entries []dockerManifestEntry
	byDesc  map[digest.Digest]int
}

// dockerEntry adds img to manifest.json when it has one manifest for the
// platform whose layers are all in the archive.
func (e *exporter) dockerEntry(ctx context.Context, dm *dockerManifests, img ExportImage) error {
	if e.opts.allPlatforms && images.IsIndexType(img.Target.MediaType) {
		return nil
	}
	mdesc, m, err := images.ResolveManifest(ctx, e.provider, img.Target, e.opts.platform)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	if !images.IsConfigType(m.Config.MediaType) {
		return nil
	}
	for _, l := range m.Layers {
		if !e.seen[l.Digest] {
			return nil
		}
	}
	if dm.byDesc == nil {
		dm.byDesc = map[digest.Digest]int{}
	}
	i, ok := dm.byDesc[mdesc.Digest]
	if !ok {
		entry := dockerManifestEntry{Config: blobName(m.Config.Digest), RepoTags: []string{}}
		for _, l := range m.Layers {
			entry.Layers = append(entry.Layers, blobName(l.Digest))
		}
		dm.entries = append(dm.entries, entry)
		i = len(dm.entries) - 1
		dm.byDesc[mdesc.Digest] = i
	}
	if n, err := reference.ParseNormalized(img.Name); err == nil && img.Name != "" && n.Tag() != "" && n.Digest() == "" {
		dm.entries[i].RepoTags = append(dm.entries[i].RepoTags, reference.FamiliarString(n))
	}
	return nil
}

func blobName(d digest.Digest) string {
	return ocispec.ImageBlobsDir + "/" + string(d.Algorithm()) + "/" + d.Encoded()
}

func copyAnnotations(a map[string]string) map[string]string {
	out := make(map[string]string, len(a)+2)
	for k, v := range a {
		out[k] = v
	}
	return out
}

// epoch is every entry's mtime, so the same images export to the same bytes.
var epoch = time.Unix(0, 0)

func writeFile(tw *tar.Writer, name string, p []byte) error {
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(p)), ModTime: epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("export: write %s: %w", name, err)
	}
	if _, err := tw.Write(p); err != nil {
		return fmt.Errorf("export: write %s: %w", name, err)
	}
	return nil
}

func writeDir(tw *tar.Writer, name string) error {
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("export: write %s: %w", name, err)
	}
	return nil
}

// writeBlob copies one blob into the tar, checking that the store holds
// exactly what the descriptor names.
func (e *exporter) writeBlob(ctx context.Context, tw *tar.Writer, desc ocispec.Descriptor) error {
	ra, err := e.provider.ReaderAt(ctx, desc)
	if err != nil {
		return fmt.Errorf("%s: %w", images.Describe(desc), err)
	}
	defer ra.Close()
	if ra.Size() != desc.Size {
		return fmt.Errorf("%s: stored size %d does not match descriptor size %d: %w", images.Describe(desc), ra.Size(), desc.Size, errdefs.ErrFailedPrecondition)
	}
	hdr := &tar.Header{Name: blobName(desc.Digest), Typeflag: tar.TypeReg, Mode: 0o444, Size: desc.Size, ModTime: epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", images.Describe(desc), err)
	}
	verifier := desc.Digest.Algorithm().Digester()
	if _, err := io.Copy(io.MultiWriter(tw, verifier.Hash()), io.NewSectionReader(ra, 0, desc.Size)); err != nil {
		return fmt.Errorf("%s: %w", images.Describe(desc), err)
	}
	if got := verifier.Digest(); got != desc.Digest {
		return fmt.Errorf("%s: stored content has digest %s: %w", images.Describe(desc), got, errdefs.ErrFailedPrecondition)
	}
	return nil
}
