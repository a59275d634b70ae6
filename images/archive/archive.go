// Package archive imports and exports image archives: OCI image layouts
// in a tar (oci-layout, index.json, blobs/ALG/HEX) and `docker save` tars
// (manifest.json with Config, RepoTags and Layers). Both directions
// stream: blobs go straight between the tar and the content store, only
// small JSON documents are held in memory, and every digest and size is
// checked.
package archive

import (
	"fmt"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/pkg/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageRecord is an image found in an imported archive: the name to store
// it under and its root descriptor (now in the content store).
type ImageRecord struct {
	Name   string
	Target ocispec.Descriptor
}

// ExportImage is an image to export under Name (which may be empty).
type ExportImage struct {
	Name   string
	Target ocispec.Descriptor
}

type options struct {
	platform     platforms.MatchComparer
	allPlatforms bool

	// import
	baseName           string
	digests            bool
	skipDigestForNamed bool
	indexName          string
	compressBlobs      bool

	// export
	skipDockerManifest   bool
	skipNonDistributable bool
}

// Opt configures Import or Export; options that concern only one of them
// are ignored by the other.
type Opt func(*options) error

// WithPlatform limits the blobs imported or exported to the manifests of
// indexes that match m (default: this host's platforms). Manifests and
// indexes named directly are always kept.
func WithPlatform(m platforms.MatchComparer) Opt {
	return func(o *options) error {
		if m == nil {
			return fmt.Errorf("platform matcher must not be nil: %w", errdefs.ErrInvalidArgument)
		}
		o.platform = m
		return nil
	}
}

// WithAllPlatforms keeps the blobs of every platform.
func WithAllPlatforms() Opt {
	return func(o *options) error { o.allPlatforms = true; return nil }
}

// WithBaseName sets the repository name (e.g. "docker.io/library/app")
// that OCI index entries naming only a tag ("org.opencontainers.image.ref.name":
// "1.0") and WithDigests names are put under.
func WithBaseName(name string) Opt {
	return func(o *options) error {
		n, err := reference.Parse(name)
		if err != nil {
			return fmt.Errorf("base name: %w", err)
		}
		if !reference.IsNameOnly(n) {
			return fmt.Errorf("base name %q must not have a tag or digest: %w", name, errdefs.ErrInvalidArgument)
		}
		o.baseName = name
		return nil
	}
}

// WithDigests also names every imported image "<basename>@<digest>", so
// images without names in the archive are kept.
func WithDigests() Opt {
	return func(o *options) error { o.digests = true; return nil }
}

// WithSkipDigestForNamed limits WithDigests to the images the archive
// does not name, as containerd's ctr import --skip-digest-for-named does.
func WithSkipDigestForNamed() Opt {
	return func(o *options) error { o.skipDigestForNamed = true; return nil }
}

// digestName reports whether an image the archive gives named names gets
// a digest name too.
func (o *options) digestName(named int) bool {
	return o.digests && (named == 0 || !o.skipDigestForNamed)
}

// WithCompressBlobs gzips the uncompressed layers of a docker archive
// (docker save writes them so) and names the compressed blobs in the
// manifests it makes, as containerd's ctr import --compress-blobs does;
// the images then push to registries compressed. OCI archives name their
// blobs themselves and are left as they are.
func WithCompressBlobs() Opt {
	return func(o *options) error { o.compressBlobs = true; return nil }
}

// WithIndexName also imports the archive's whole index as one image of
// this name.
func WithIndexName(name string) Opt {
	return func(o *options) error {
		if name == "" {
			return fmt.Errorf("index name must not be empty: %w", errdefs.ErrInvalidArgument)
		}
		o.indexName = name
		return nil
	}
}

// WithoutDockerManifest makes Export write only the OCI layout, without
// the manifest.json that `docker load` reads.
func WithoutDockerManifest() Opt {
	return func(o *options) error { o.skipDockerManifest = true; return nil }
}

// WithSkipNonDistributable makes Export leave out non-distributable
// ("foreign") layers even when the store has them; manifests still name
// them, for the importer to fetch from where they are distributed. Without
// it they are written when present and skipped when absent.
func WithSkipNonDistributable() Opt {
	return func(o *options) error { o.skipNonDistributable = true; return nil }
}

func newOptions(opts []Opt) (options, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	if o.allPlatforms {
		o.platform = platforms.All
	} else if o.platform == nil {
		o.platform = platforms.DefaultMatcher()
	}
	if o.digests && o.baseName == "" {
		// As ctr does, so digest names are recognisably imports.
		o.baseName = "import-" + time.Now().UTC().Format("2006-01-02")
	}
	return o, nil
}
