package images

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxIndexDepth bounds indexes nested in indexes; real images use one.
const maxIndexDepth = 8

// Manifest returns the manifest of image (an index or a manifest) for the
// platform: in an index, the matching manifest that platform prefers. A
// nil platform accepts any. See ResolveManifest.
func Manifest(ctx context.Context, provider content.Provider, image ocispec.Descriptor, platform platforms.MatchComparer) (ocispec.Manifest, error) {
	_, m, err := ResolveManifest(ctx, provider, image, platform)
	return m, err
}

// ResolveManifest is Manifest that also returns the manifest's descriptor.
// Index entries are ranked by their platform field; an entry without one
// is judged by its config's os/architecture. Attestation manifests are
// never chosen. Bad JSON, unknown media types, invalid descriptors and
// oversized documents are errors; no match is NotFound.
func ResolveManifest(ctx context.Context, provider content.Provider, image ocispec.Descriptor, platform platforms.MatchComparer) (ocispec.Descriptor, ocispec.Manifest, error) {
	if err := ValidateDescriptor(image); err != nil {
		return ocispec.Descriptor{}, ocispec.Manifest{}, err
	}
	if platform == nil {
		platform = platforms.All
	}
	desc, m, ok, err := resolveManifest(ctx, provider, image, platform, 0, true)
	if err != nil {
		return ocispec.Descriptor{}, ocispec.Manifest{}, err
	}
	if !ok {
		return ocispec.Descriptor{}, ocispec.Manifest{}, fmt.Errorf("%s: no manifest for the requested platform: %w", Describe(image), errdefs.ErrNotFound)
	}
	return desc, m, nil
}

func resolveManifest(ctx context.Context, provider content.Provider, desc ocispec.Descriptor, platform platforms.MatchComparer, depth int, root bool) (ocispec.Descriptor, ocispec.Manifest, bool, error) {
	if err := ctx.Err(); err != nil {
		return desc, ocispec.Manifest{}, false, err
	}
	switch {
	case IsManifestType(desc.MediaType):
		p, err := ReadBlob(ctx, provider, desc)
		if err != nil {
			return desc, ocispec.Manifest{}, false, err
		}
		m, err := ParseManifest(desc, p)
		if err != nil {
			return desc, m, false, err
		}
		if !root && desc.Platform == nil {
			// Only a config can say what platform this entry is for.
			if !IsConfigType(m.Config.MediaType) {
				return desc, m, false, nil
			}
			cfg, err := ReadConfig(ctx, provider, m.Config)
			if err != nil {
				return desc, m, false, err
			}
			if !platform.Match(ConfigPlatform(cfg)) {
				return desc, m, false, nil
			}
		}
		return desc, m, true, nil

	case IsIndexType(desc.MediaType):
		if depth >= maxIndexDepth {
			return desc, ocispec.Manifest{}, false, fmt.Errorf("%s: indexes nested deeper than %d: %w", Describe(desc), maxIndexDepth, errdefs.ErrInvalidArgument)
		}
		p, err := ReadBlob(ctx, provider, desc)
		if err != nil {
			return desc, ocispec.Manifest{}, false, err
		}
		idx, err := ParseIndex(desc, p)
		if err != nil {
			return desc, ocispec.Manifest{}, false, err
		}
		var candidates []ocispec.Descriptor
		for _, c := range idx.Manifests {
			if !IsManifestType(c.MediaType) && !IsIndexType(c.MediaType) || isAttestation(c.Annotations) {
				continue
			}
			if c.Platform != nil && !platform.Match(*c.Platform) {
				continue
			}
			candidates = append(candidates, c)
		}
		sortByPlatform(candidates, platform)
		for _, c := range candidates {
			d, m, ok, err := resolveManifest(ctx, provider, c, platform, depth+1, false)
			if err != nil || ok {
				return d, m, ok, err
			}
		}
		return desc, ocispec.Manifest{}, false, nil
	}
	return desc, ocispec.Manifest{}, false, unsupported(desc)
}

// ConfigPlatform is the normalised platform an image config declares.
func ConfigPlatform(cfg ocispec.Image) ocispec.Platform {
	return platforms.Normalize(ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant})
}

// ReadConfig reads, verifies and parses an image config blob.
func ReadConfig(ctx context.Context, provider content.Provider, desc ocispec.Descriptor) (ocispec.Image, error) {
	if !IsConfigType(desc.MediaType) {
		return ocispec.Image{}, fmt.Errorf("%s: media type %q is not an image config: %w", Describe(desc), truncate(desc.MediaType), errdefs.ErrNotImplemented)
	}
	p, err := ReadBlob(ctx, provider, desc)
	if err != nil {
		return ocispec.Image{}, err
	}
	return ParseConfig(desc, p)
}

// Config returns the config descriptor of image's manifest for platform.
func Config(ctx context.Context, provider content.Provider, image ocispec.Descriptor, platform platforms.MatchComparer) (ocispec.Descriptor, error) {
	m, err := Manifest(ctx, provider, image, platform)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if !IsConfigType(m.Config.MediaType) {
		return ocispec.Descriptor{}, fmt.Errorf("%s: media type %q is not an image config: %w", Describe(m.Config), truncate(m.Config.MediaType), errdefs.ErrNotImplemented)
	}
	return m.Config, nil
}

// RootFS returns the diff IDs the config desc lists, bottom layer first.
func RootFS(ctx context.Context, provider content.Provider, configDesc ocispec.Descriptor) ([]digest.Digest, error) {
	cfg, err := ReadConfig(ctx, provider, configDesc)
	if err != nil {
		return nil, err
	}
	return cfg.RootFS.DiffIDs, nil
}

// Platforms lists the platforms image provides: an index's entries, or
// for a manifest (or an entry without platform) its config's platform.
func Platforms(ctx context.Context, provider content.Provider, image ocispec.Descriptor) ([]ocispec.Platform, error) {
	var out []ocispec.Platform
	seen := map[string]bool{}
	add := func(p ocispec.Platform) {
		p = platforms.Normalize(p)
		if k := platforms.Format(p); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	err := Walk(ctx, HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		switch {
		case IsIndexType(desc.MediaType):
			return Children(ctx, provider, desc)
		case IsManifestType(desc.MediaType):
			if desc.Platform != nil {
				add(*desc.Platform)
				return nil, nil
			}
			p, err := ReadBlob(ctx, provider, desc)
			if err != nil {
				return nil, err
			}
			m, err := ParseManifest(desc, p)
			if err != nil {
				return nil, err
			}
			if !IsConfigType(m.Config.MediaType) {
				return nil, nil
			}
			cfg, err := ReadConfig(ctx, provider, m.Config)
			if err != nil {
				return nil, err
			}
			add(ConfigPlatform(cfg))
		}
		return nil, nil
	}), image)
	return out, err
}

// Check reports what of image is in provider for platform: available is
// false only when the manifest itself cannot be found; required lists the
// config and layers, split into present and missing.
func Check(ctx context.Context, provider content.Provider, image ocispec.Descriptor, platform platforms.MatchComparer) (available bool, required, present, missing []ocispec.Descriptor, err error) {
	m, err := Manifest(ctx, provider, image, platform)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return false, []ocispec.Descriptor{image}, nil, []ocispec.Descriptor{image}, nil
		}
		return false, nil, nil, nil, fmt.Errorf("check %s: %w", Describe(image), err)
	}
	required = append([]ocispec.Descriptor{m.Config}, m.Layers...)
	for _, desc := range required {
		ok, err := blobPresent(ctx, provider, desc)
		if err != nil {
			return false, nil, nil, nil, fmt.Errorf("check %s: %w", Describe(desc), err)
		}
		if ok {
			present = append(present, desc)
		} else {
			missing = append(missing, desc)
		}
	}
	return true, required, present, missing, nil
}

// blobPresent reports whether desc's blob is in provider: by Info where
// the provider has it (a remote store's ReaderAt only finds out at the
// first read), else by opening it.
func blobPresent(ctx context.Context, provider content.Provider, desc ocispec.Descriptor) (bool, error) {
	if ip, ok := provider.(interface {
		Info(context.Context, digest.Digest) (content.Info, error)
	}); ok {
		_, err := ip.Info(ctx, desc.Digest)
		if errdefs.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	ra, err := provider.ReaderAt(ctx, desc)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ra.Close()
	return true, nil
}

// Usage sums the sizes of the distinct blobs image references, for
// platform (nil: all platforms). Manifests missing from provider are not
// descended into.
func Usage(ctx context.Context, provider content.Provider, image ocispec.Descriptor, platform platforms.MatchComparer) (int64, error) {
	if err := ValidateDescriptor(image); err != nil {
		return 0, err
	}
	var (
		size int64
		seen = map[digest.Digest]bool{}
	)
	children := FilterPlatforms(ChildrenHandler(provider), platform)
	err := Walk(ctx, HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if seen[desc.Digest] {
			return nil, ErrSkipDesc
		}
		seen[desc.Digest] = true
		size += desc.Size
		c, err := children(ctx, desc)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, ErrSkipDesc
		}
		return c, err
	}), image)
	return size, err
}
