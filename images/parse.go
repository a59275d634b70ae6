package images

import (
	"encoding/json"
	"fmt"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// shape holds the fields that tell a manifest from an index, so a blob
// that claims one type but carries the other's fields is refused (a
// manifest that is also an index could select different content for
// different readers).
type shape struct {
	SchemaVersion *int            `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        json.RawMessage `json:"config"`
	Layers        json.RawMessage `json:"layers"`
	Manifests     json.RawMessage `json:"manifests"`
}

func checkShape(desc ocispec.Descriptor, p []byte, wantIndex bool) error {
	var s shape
	if err := json.Unmarshal(p, &s); err != nil {
		return fmt.Errorf("%s: invalid JSON: %v: %w", Describe(desc), err, errdefs.ErrInvalidArgument)
	}
	if s.SchemaVersion == nil || *s.SchemaVersion != 2 {
		return fmt.Errorf("%s: schemaVersion must be 2: %w", Describe(desc), errdefs.ErrInvalidArgument)
	}
	if s.MediaType != "" && s.MediaType != desc.MediaType {
		return fmt.Errorf("%s: mediaType %q in the document does not match descriptor type %q: %w", Describe(desc), truncate(s.MediaType), desc.MediaType, errdefs.ErrInvalidArgument)
	}
	if wantIndex && (s.Config != nil || s.Layers != nil) {
		return fmt.Errorf("%s: index has manifest fields config or layers: %w", Describe(desc), errdefs.ErrInvalidArgument)
	}
	if !wantIndex && s.Manifests != nil {
		return fmt.Errorf("%s: manifest has index field manifests: %w", Describe(desc), errdefs.ErrInvalidArgument)
	}
	return nil
}

// ParseManifest decodes and validates the manifest p read for desc.
func ParseManifest(desc ocispec.Descriptor, p []byte) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if !IsManifestType(desc.MediaType) {
		return m, unsupported(desc)
	}
	if err := checkShape(desc, p, false); err != nil {
		return m, err
	}
	if err := json.Unmarshal(p, &m); err != nil {
		return m, fmt.Errorf("%s: invalid JSON: %v: %w", Describe(desc), err, errdefs.ErrInvalidArgument)
	}
	if err := ValidateDescriptor(m.Config); err != nil {
		return m, fmt.Errorf("%s: config: %w", Describe(desc), err)
	}
	for i, l := range m.Layers {
		if err := ValidateDescriptor(l); err != nil {
			return m, fmt.Errorf("%s: layer %d: %w", Describe(desc), i, err)
		}
	}
	if m.Subject != nil {
		if err := ValidateDescriptor(*m.Subject); err != nil {
			return m, fmt.Errorf("%s: subject: %w", Describe(desc), err)
		}
	}
	return m, nil
}

// ParseIndex decodes and validates the index or manifest list p read for
// desc.
func ParseIndex(desc ocispec.Descriptor, p []byte) (ocispec.Index, error) {
	var idx ocispec.Index
	if !IsIndexType(desc.MediaType) {
		return idx, unsupported(desc)
	}
	if err := checkShape(desc, p, true); err != nil {
		return idx, err
	}
	if err := json.Unmarshal(p, &idx); err != nil {
		return idx, fmt.Errorf("%s: invalid JSON: %v: %w", Describe(desc), err, errdefs.ErrInvalidArgument)
	}
	for i, m := range idx.Manifests {
		if err := ValidateDescriptor(m); err != nil {
			return idx, fmt.Errorf("%s: manifests[%d]: %w", Describe(desc), i, err)
		}
	}
	return idx, nil
}

// ParseConfig decodes and validates an image config: its rootfs must be
// of type "layers" with valid diff IDs.
func ParseConfig(desc ocispec.Descriptor, p []byte) (ocispec.Image, error) {
	var img ocispec.Image
	if !IsConfigType(desc.MediaType) {
		return img, fmt.Errorf("%s: media type %q is not an image config: %w", Describe(desc), desc.MediaType, errdefs.ErrNotImplemented)
	}
	if err := json.Unmarshal(p, &img); err != nil {
		return img, fmt.Errorf("%s: invalid JSON: %v: %w", Describe(desc), err, errdefs.ErrInvalidArgument)
	}
	if img.RootFS.Type != "layers" {
		return img, fmt.Errorf("%s: rootfs type %q is not \"layers\": %w", Describe(desc), truncate(img.RootFS.Type), errdefs.ErrInvalidArgument)
	}
	for i, d := range img.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return img, fmt.Errorf("%s: diff_ids[%d] %q: %v: %w", Describe(desc), i, truncate(string(d)), err, errdefs.ErrInvalidArgument)
		}
		if d.Algorithm() != digest.SHA256 {
			return img, fmt.Errorf("%s: diff_ids[%d] %s: only sha256 diff IDs are supported: %w", Describe(desc), i, d, errdefs.ErrNotImplemented)
		}
	}
	return img, nil
}

// unsupported is the error for a document whose media type we cannot read.
func unsupported(desc ocispec.Descriptor) error {
	if IsSchema1Type(desc.MediaType) {
		return fmt.Errorf("manifest %s: Docker schema 1 images are not supported: %w", desc.Digest, errdefs.ErrNotImplemented)
	}
	return fmt.Errorf("%s: unknown media type %q: %w", Describe(desc), truncate(desc.MediaType), errdefs.ErrNotImplemented)
}
