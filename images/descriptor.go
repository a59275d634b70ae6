package images

import (
	"context"
	// go-digest only accepts algorithms whose hash is linked in.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"io"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// MaxJSONSize bounds a manifest, index or config: they are read into
// memory, and real ones are kilobytes. Registries refuse manifests over
// 4 MiB; configs with long histories get twice that.
const MaxJSONSize = 8 << 20

// kind names what a descriptor points at, for error messages.
func kind(mt string) string {
	switch {
	case IsIndexType(mt):
		return "index"
	case IsManifestType(mt), IsSchema1Type(mt):
		return "manifest"
	case IsConfigType(mt):
		return "config"
	case IsLayerType(mt):
		return "layer"
	}
	return "blob"
}

// Describe names a descriptor in messages: `manifest sha256:…`.
func Describe(desc ocispec.Descriptor) string {
	return kind(desc.MediaType) + " " + truncate(desc.Digest.String())
}

// ValidateDescriptor checks what every descriptor read from outside must
// satisfy: a valid digest, a non-negative size (bounded for JSON documents)
// and a well-formed media type.
func ValidateDescriptor(desc ocispec.Descriptor) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%s: invalid digest: %v: %w", Describe(desc), err, errdefs.ErrInvalidArgument)
	}
	if desc.Size < 0 {
		return fmt.Errorf("%s: negative size %d: %w", Describe(desc), desc.Size, errdefs.ErrInvalidArgument)
	}
	if err := ValidateMediaType(desc.MediaType); err != nil {
		return fmt.Errorf("%s: %w", Describe(desc), err)
	}
	if IsJSONType(desc.MediaType) && desc.Size > MaxJSONSize {
		return fmt.Errorf("%s: size %d exceeds the %d byte limit for %ss: %w", Describe(desc), desc.Size, MaxJSONSize, kind(desc.MediaType), errdefs.ErrInvalidArgument)
	}
	return nil
}

// ReadBlob reads a JSON-sized blob whole and verifies its size and digest
// against desc, so a corrupt store or a lying descriptor is caught here.
func ReadBlob(ctx context.Context, provider content.Provider, desc ocispec.Descriptor) ([]byte, error) {
	if err := ValidateDescriptor(desc); err != nil {
		return nil, err
	}
	if desc.Size > MaxJSONSize {
		return nil, fmt.Errorf("%s: size %d exceeds the %d byte limit for documents read into memory: %w", Describe(desc), desc.Size, MaxJSONSize, errdefs.ErrInvalidArgument)
	}
	ra, err := provider.ReaderAt(ctx, desc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Describe(desc), err)
	}
	defer ra.Close()
	if ra.Size() != desc.Size {
		return nil, fmt.Errorf("%s: stored size %d does not match descriptor size %d: %w", Describe(desc), ra.Size(), desc.Size, errdefs.ErrFailedPrecondition)
	}
	p := make([]byte, desc.Size)
	if _, err := io.ReadFull(io.NewSectionReader(ra, 0, desc.Size), p); err != nil {
		return nil, fmt.Errorf("%s: read: %w", Describe(desc), err)
	}
	if got := desc.Digest.Algorithm().FromBytes(p); got != desc.Digest {
		return nil, fmt.Errorf("%s: content has digest %s: %w", Describe(desc), got, errdefs.ErrFailedPrecondition)
	}
	return p, nil
}
