package images

import (
	"context"
	"fmt"
	"strconv"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/log"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Children returns what desc points at: an index's manifests, a
// manifest's config and layers. Layers, configs and blobs of types we do
// not know (signatures, attestations) are leaves; schema 1 is refused.
func Children(ctx context.Context, provider content.Provider, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	switch {
	case IsManifestType(desc.MediaType):
		p, err := ReadBlob(ctx, provider, desc)
		if err != nil {
			return nil, err
		}
		m, err := ParseManifest(desc, p)
		if err != nil {
			return nil, err
		}
		return append([]ocispec.Descriptor{m.Config}, m.Layers...), nil
	case IsIndexType(desc.MediaType):
		p, err := ReadBlob(ctx, provider, desc)
		if err != nil {
			return nil, err
		}
		idx, err := ParseIndex(desc, p)
		if err != nil {
			return nil, err
		}
		return append([]ocispec.Descriptor(nil), idx.Manifests...), nil
	case IsSchema1Type(desc.MediaType):
		return nil, unsupported(desc)
	case IsLayerType(desc.MediaType), IsConfigType(desc.MediaType):
		return nil, nil
	}
	log.G(ctx).WithField("digest", desc.Digest).WithField("mediatype", desc.MediaType).Debug("treating blob of unknown media type as a leaf")
	return nil, nil
}

// ChildrenHandler is Children as a handler.
func ChildrenHandler(provider content.Provider) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		return Children(ctx, provider, desc)
	}
}

// ChildGCLabels returns the labels a parent blob carries so GC keeps its
// children: "m.N" for manifests and indexes, "config", "l.N" for layers,
// plain "N" for anything else; N counts per kind from 0.
func ChildGCLabels(children []ocispec.Descriptor) map[string]string {
	if len(children) == 0 {
		return nil
	}
	labels := make(map[string]string, len(children))
	counts := map[string]int{}
	for _, c := range children {
		var prefix string
		switch {
		case IsManifestType(c.MediaType), IsIndexType(c.MediaType):
			prefix = "m."
		case IsConfigType(c.MediaType):
			if _, dup := labels[LabelGCRefContent+"config"]; !dup {
				labels[LabelGCRefContent+"config"] = c.Digest.String()
				continue
			}
		case IsLayerType(c.MediaType):
			prefix = "l."
		}
		labels[LabelGCRefContent+prefix+strconv.Itoa(counts[prefix])] = c.Digest.String()
		counts[prefix]++
	}
	return labels
}

// SetChildrenLabels wraps f so that each blob with children is labelled
// with references to them, keeping them alive through GC.
func SetChildrenLabels(manager content.Manager, f HandlerFunc) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := f(ctx, desc)
		if err != nil || len(children) == 0 {
			return children, err
		}
		if err := SetGCLabels(ctx, manager, desc, children); err != nil {
			return nil, err
		}
		return children, nil
	}
}

// SetGCLabels labels desc's blob with GC references to children.
func SetGCLabels(ctx context.Context, manager content.Manager, desc ocispec.Descriptor, children []ocispec.Descriptor) error {
	labels := ChildGCLabels(children)
	if len(labels) == 0 {
		return nil
	}
	info := content.Info{Digest: desc.Digest, Labels: labels}
	fields := make([]string, 0, len(labels))
	for k := range labels {
		fields = append(fields, "labels."+k)
	}
	if _, err := manager.Update(ctx, info, fields...); err != nil {
		return fmt.Errorf("%s: set GC labels: %w", Describe(desc), err)
	}
	return nil
}
