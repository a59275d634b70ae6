package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxDepth bounds indexes nested in indexes.
const maxDepth = 8

// graph is what an OCI import needs: the blobs reachable from index.json
// through the selected platforms. It grows as manifests arrive; once
// index.json is known and no needed manifest is still unread, any blob
// outside it can be skipped unread.
type graph struct {
	rootsKnown bool
	roots      []ocispec.Descriptor
	indexDesc  ocispec.Descriptor
	need       map[digest.Digest]ocispec.Descriptor
	pending    map[digest.Digest]ocispec.Descriptor // needed documents not yet read
	depth      map[digest.Digest]int
	parsed     []ocispec.Descriptor                   // documents read, in order
	children   map[digest.Digest][]ocispec.Descriptor // their selected children
}

func (g *graph) init() {
	g.need = map[digest.Digest]ocispec.Descriptor{}
	g.pending = map[digest.Digest]ocispec.Descriptor{}
	g.depth = map[digest.Digest]int{}
	g.children = map[digest.Digest][]ocispec.Descriptor{}
}

// wanted reports whether a blob must be stored: until the graph is
// complete, any blob might be needed.
func (g *graph) wanted(d digest.Digest) bool {
	if !g.rootsKnown || len(g.pending) > 0 {
		return true
	}
	_, ok := g.need[d]
	return ok
}

func (g *graph) add(ctx context.Context, im *importer, desc ocispec.Descriptor, depth int) error {
	if _, ok := g.need[desc.Digest]; ok {
		return nil
	}
	if images.IsSchema1Type(desc.MediaType) {
		return fmt.Errorf("manifest %s: Docker schema 1 images are not supported: %w", desc.Digest, errdefs.ErrNotImplemented)
	}
	g.need[desc.Digest] = desc
	if !images.IsManifestType(desc.MediaType) && !images.IsIndexType(desc.MediaType) {
		return nil
	}
	if depth > maxDepth {
		return invalidf("%s: indexes nested deeper than %d", images.Describe(desc), maxDepth)
	}
	g.depth[desc.Digest] = depth
	ok, err := im.isPresent(ctx, desc.Digest)
	if err != nil {
		return err
	}
	if ok {
		return g.read(ctx, im, desc)
	}
	g.pending[desc.Digest] = desc
	return nil
}

// arrived is called when blob d has been stored.
func (g *graph) arrived(ctx context.Context, im *importer, d digest.Digest) error {
	desc, ok := g.pending[d]
	if !ok {
		return nil
	}
	delete(g.pending, d)
	return g.read(ctx, im, desc)
}

// read parses a stored manifest or index and adds its selected children.
func (g *graph) read(ctx context.Context, im *importer, desc ocispec.Descriptor) error {
	p, err := images.ReadBlob(ctx, im.store, desc)
	if err != nil {
		return err
	}
	var children []ocispec.Descriptor
	if images.IsManifestType(desc.MediaType) {
		m, err := images.ParseManifest(desc, p)
		if err != nil {
			return err
		}
		children = append([]ocispec.Descriptor{m.Config}, m.Layers...)
	} else {
		idx, err := images.ParseIndex(desc, p)
		if err != nil {
			return err
		}
		for _, c := range idx.Manifests {
			if c.Platform != nil && !im.opts.platform.Match(*c.Platform) {
				continue
			}
			children = append(children, c)
		}
	}
	g.parsed = append(g.parsed, desc)
	g.children[desc.Digest] = children
	for _, c := range children {
		if err := g.add(ctx, im, c, g.depth[desc.Digest]+1); err != nil {
			return err
		}
	}
	return nil
}

// indexRead registers index.json's entries as roots as soon as it is read.
func (im *importer) indexRead(ctx context.Context) error {
	p := im.files[ocispec.ImageIndexFile]
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(p), Size: int64(len(p))}
	idx, err := images.ParseIndex(desc, p)
	if err != nil {
		return fmt.Errorf("%s: %w", ocispec.ImageIndexFile, err)
	}
	im.g.rootsKnown = true
	im.g.roots = idx.Manifests
	im.g.indexDesc = desc
	for i, root := range idx.Manifests {
		// An image archive holds images; other artifacts are refused
		// rather than stored as opaque blobs nobody can use.
		if !images.IsManifestType(root.MediaType) && !images.IsIndexType(root.MediaType) && !images.IsSchema1Type(root.MediaType) {
			return fmt.Errorf("%s: manifests[%d] %s: unknown media type %q: %w", ocispec.ImageIndexFile, i, root.Digest, root.MediaType, errdefs.ErrNotImplemented)
		}
		if err := im.g.add(ctx, im, root, 0); err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) finishOCI(ctx context.Context) ([]ImageRecord, error) {
	layout, ok := im.files[ocispec.ImageLayoutFile]
	if !ok {
		return nil, invalidf("%s without %s", ocispec.ImageIndexFile, ocispec.ImageLayoutFile)
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(layout, &l); err != nil {
		return nil, invalidf("%s: invalid JSON: %v", ocispec.ImageLayoutFile, err)
	}
	if l.Version != ocispec.ImageLayoutVersion {
		return nil, fmt.Errorf("%s: layout version %.32q: %w", ocispec.ImageLayoutFile, l.Version, errdefs.ErrNotImplemented)
	}
	g := &im.g
	if len(g.pending) > 0 {
		return nil, fmt.Errorf("%s is missing from the archive: %w", images.Describe(first(g.pending)), errdefs.ErrNotFound)
	}
	for _, d := range sortedDigests(g.need) {
		desc := g.need[d]
		ok, err := im.isPresent(ctx, d)
		if err != nil {
			return nil, err
		}
		if !ok && !images.IsNonDistributable(desc.MediaType) {
			return nil, fmt.Errorf("%s is missing from the archive: %w", images.Describe(desc), errdefs.ErrNotFound)
		}
	}
	for _, parent := range g.parsed {
		if err := images.SetGCLabels(ctx, im.store, parent, g.children[parent.Digest]); err != nil {
			return nil, err
		}
	}

	var records []ImageRecord
	for _, root := range g.roots {
		names, err := im.ociNames(ctx, root)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			records = append(records, ImageRecord{Name: n, Target: root})
		}
	}
	if im.opts.indexName != "" {
		desc, err := im.writeBytes(ctx, ocispec.MediaTypeImageIndex, im.files[ocispec.ImageIndexFile])
		if err != nil {
			return nil, err
		}
		if err := images.SetGCLabels(ctx, im.store, desc, g.roots); err != nil {
			return nil, err
		}
		records = append(records, ImageRecord{Name: im.opts.indexName, Target: desc})
	}
	return records, nil
}

// ociNames names one index.json entry.
func (im *importer) ociNames(ctx context.Context, desc ocispec.Descriptor) ([]string, error) {
	var names []string
	if n := desc.Annotations[images.AnnotationImageName]; n != "" {
		if _, err := reference.Parse(n); err != nil {
			return nil, fmt.Errorf("%s: annotation %s: %w", images.Describe(desc), images.AnnotationImageName, err)
		}
		names = append(names, n)
	} else if r := desc.Annotations[ocispec.AnnotationRefName]; r != "" {
		n, err := im.refName(r)
		if err != nil {
			return nil, fmt.Errorf("%s: annotation %s: %w", images.Describe(desc), ocispec.AnnotationRefName, err)
		}
		if n != "" {
			names = append(names, n)
		} else {
			log.G(ctx).WithField("ref", r).Debug("import: tag without base name; image left unnamed")
		}
	}
	if im.opts.digestName(len(names)) {
		names = append(names, im.opts.baseName+"@"+desc.Digest.String())
	}
	return names, nil
}

// refName turns an OCI ref.name into an image name: a tag goes under the
// base name; a full reference is normalised; a bare tag without a base
// name names nothing.
func (im *importer) refName(r string) (string, error) {
	if im.opts.baseName != "" {
		if base, err := reference.Parse(im.opts.baseName); err == nil {
			if n, err := reference.WithTag(base, r); err == nil {
				return n.String(), nil
			}
		}
	}
	if !strings.ContainsAny(r, "/:@") {
		return "", nil
	}
	n, err := reference.ParseDockerRef(r)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

func sortedDigests(m map[digest.Digest]ocispec.Descriptor) []digest.Digest {
	out := make([]digest.Digest, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func first(m map[digest.Digest]ocispec.Descriptor) ocispec.Descriptor {
	return m[sortedDigests(m)[0]]
}
