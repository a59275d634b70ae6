package images

import (
	"fmt"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's media types; the OCI ones are ocispec's constants.
const (
	MediaTypeDockerSchema2Layer            = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerSchema2LayerGzip        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerSchema2LayerZstd        = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	MediaTypeDockerSchema2LayerForeign     = "application/vnd.docker.image.rootfs.foreign.diff.tar"
	MediaTypeDockerSchema2LayerForeignGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	MediaTypeDockerSchema2Config           = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerSchema2Manifest         = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerSchema2ManifestList     = "application/vnd.docker.distribution.manifest.list.v2+json"

	// Schema 1 is recognised only to refuse it by name.
	MediaTypeDockerSchema1Manifest       = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	MediaTypeDockerSchema1ManifestUnsign = "application/vnd.docker.distribution.manifest.v1+json"
)

// Compression of a layer media type.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "uncompressed"
}

// IsManifestType reports whether mt is an image manifest.
func IsManifestType(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerSchema2Manifest
}

// IsIndexType reports whether mt is an index or manifest list.
func IsIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerSchema2ManifestList
}

// IsSchema1Type reports whether mt is Docker's retired schema 1.
func IsSchema1Type(mt string) bool {
	return mt == MediaTypeDockerSchema1Manifest || mt == MediaTypeDockerSchema1ManifestUnsign
}

// IsConfigType reports whether mt is an image config.
func IsConfigType(mt string) bool {
	return mt == ocispec.MediaTypeImageConfig || mt == MediaTypeDockerSchema2Config
}

// IsJSONType reports whether blobs of type mt are JSON documents read into
// memory (and so bounded by MaxJSONSize).
func IsJSONType(mt string) bool {
	return IsManifestType(mt) || IsIndexType(mt) || IsConfigType(mt)
}

// layerTypes maps each layer media type to its compression and whether it
// is non-distributable (foreign).
var layerTypes = map[string]struct {
	c       Compression
	foreign bool
}{
	ocispec.MediaTypeImageLayer:                     {Uncompressed, false},
	ocispec.MediaTypeImageLayerGzip:                 {Gzip, false},
	ocispec.MediaTypeImageLayerZstd:                 {Zstd, false},
	ocispec.MediaTypeImageLayerNonDistributable:     {Uncompressed, true}, //nolint:staticcheck // still found in the wild
	ocispec.MediaTypeImageLayerNonDistributableGzip: {Gzip, true},         //nolint:staticcheck
	ocispec.MediaTypeImageLayerNonDistributableZstd: {Zstd, true},         //nolint:staticcheck
	MediaTypeDockerSchema2Layer:                     {Uncompressed, false},
	MediaTypeDockerSchema2LayerGzip:                 {Gzip, false},
	MediaTypeDockerSchema2LayerZstd:                 {Zstd, false},
	MediaTypeDockerSchema2LayerForeign:              {Uncompressed, true},
	MediaTypeDockerSchema2LayerForeignGzip:          {Gzip, true},
}

// IsLayerType reports whether mt is a layer we can unpack.
func IsLayerType(mt string) bool {
	_, ok := layerTypes[mt]
	return ok
}

// IsNonDistributable reports whether mt is a foreign layer that registries
// and archives may omit.
func IsNonDistributable(mt string) bool { return layerTypes[mt].foreign }

// LayerCompression returns how a layer of type mt is compressed, or a
// NotImplemented error for types that are not layers.
func LayerCompression(mt string) (Compression, error) {
	t, ok := layerTypes[mt]
	if !ok {
		return Uncompressed, fmt.Errorf("media type %q is not a known layer type: %w", mt, errdefs.ErrNotImplemented)
	}
	return t.c, nil
}

// ValidateMediaType checks that mt is a syntactically valid media type:
// RFC 6838's type/subtype, each 1 to 127 of its restricted name chars
// starting with a letter or digit; parameters are not allowed in
// descriptors. Checked by hand: the equivalent regexp (with its {0,126}
// repeats) compiles to a program whose allocation cost every ctr command
// that reads an image ~130 page faults.
func ValidateMediaType(mt string) error {
	if mt == "" {
		return fmt.Errorf("media type is empty: %w", errdefs.ErrInvalidArgument)
	}
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || !restrictedName(typ) || !restrictedName(sub) {
		return fmt.Errorf("media type %q is malformed: %w", truncate(mt), errdefs.ErrInvalidArgument)
	}
	return nil
}

// restrictedName is RFC 6838's restricted-name: 1 to 127 characters, a
// letter or digit first, then letters, digits and !#$&^_.+-.
func restrictedName(s string) bool {
	if len(s) == 0 || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return false
		}
		if !alnum && !strings.ContainsRune("!#$&^_.+-", rune(c)) {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	const max = 100
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// isAttestation reports whether desc is a build attestation manifest that
// BuildKit puts in indexes with an "unknown/unknown" platform.
func isAttestation(annotations map[string]string) bool {
	return strings.HasPrefix(annotations["vnd.docker.reference.type"], "attestation")
}
