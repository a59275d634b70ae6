// Package diff applies layers onto mounts and computes layers from the
// difference of two mount sets. walking/ is the implementation that works on
// any file system by walking directories.
package diff

import (
	"context"

	"github.com/berth-containers/berth/mount"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ApplyConfig configures Apply.
type ApplyConfig struct {
	// ProcessorPayloads are passed to stream processors keyed by media type.
	ProcessorPayloads map[string][]byte
}

// ApplyOpt sets ApplyConfig fields.
type ApplyOpt func(context.Context, ocispec.Descriptor, *ApplyConfig) error

// Applier applies a layer blob (from the content store) onto mounts and
// returns the descriptor of the uncompressed layer (its diff ID).
type Applier interface {
	Apply(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount, opts ...ApplyOpt) (ocispec.Descriptor, error)
}

// Config configures Compare.
type Config struct {
	MediaType string
	Reference string
	Labels    map[string]string
}

// Opt sets Config fields.
type Opt func(*Config) error

// Comparer writes the difference of lower and upper as a layer blob into
// the content store and returns its descriptor.
type Comparer interface {
	Compare(ctx context.Context, lower, upper []mount.Mount, opts ...Opt) (ocispec.Descriptor, error)
}
