// Package diff serves containerd.services.diff.v1.Diff: applying layer
// blobs onto mounts and computing layers from two mount sets, with the
// differ plugins.
package diff

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"

	api "github.com/berth-containers/berth/api/services/diff/v1"
	"github.com/berth-containers/berth/api/types"
	"github.com/berth-containers/berth/diff"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/plugin"
)

// Config is the [plugins."io.containerd.grpc.v1.diff"] section.
type Config struct {
	// Order lists the differ plugins to try, first one that applies wins.
	Order []string `toml:"default"`
}

func init() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.GRPCPlugin,
		ID:       "diff",
		Requires: []plugin.Type{plugin.DiffPlugin},
		Config:   &Config{Order: []string{"walking"}},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			cfg, _ := ic.Config.(*Config)
			order := []string{"walking"}
			if cfg != nil && len(cfg.Order) > 0 {
				order = cfg.Order
			}
			var differs []interface{}
			for _, id := range order {
				d, err := ic.GetByID(plugin.DiffPlugin, id)
				if err != nil {
					return nil, fmt.Errorf("differ %q: %w", id, err)
				}
				differs = append(differs, d)
			}
			return NewService(differs...), nil
		},
	})
}

// Service is the gRPC face of the differs. Each call goes to the first
// differ that implements it; a differ that answers NotImplemented passes
// the call to the next.
type Service struct {
	api.UnimplementedDiffServer
	appliers  []diff.Applier
	comparers []diff.Comparer
}

// NewService returns the service over differs, each a diff.Applier, a
// diff.Comparer or both.
func NewService(differs ...interface{}) *Service {
	s := &Service{}
	for _, d := range differs {
		if a, ok := d.(diff.Applier); ok {
			s.appliers = append(s.appliers, a)
		}
		if c, ok := d.(diff.Comparer); ok {
			s.comparers = append(s.comparers, c)
		}
	}
	return s
}

// Register implements the server's gRPC service registration.
func (s *Service) Register(srv *grpc.Server) error {
	api.RegisterDiffServer(srv, s)
	return nil
}

func (s *Service) Apply(ctx context.Context, r *api.ApplyRequest) (*api.ApplyResponse, error) {
	if r.Diff == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("apply: diff descriptor is required: %w", errdefs.ErrInvalidArgument))
	}
	desc := descFromProto(r.Diff)
	mounts := mountsFromProto(r.Mounts)
	var opts []diff.ApplyOpt
	if len(r.Payloads) > 0 {
		payloads := make(map[string][]byte, len(r.Payloads))
		for k, v := range r.Payloads {
			payloads[k] = v.GetValue()
		}
		opts = append(opts, func(_ context.Context, _ ocispec.Descriptor, c *diff.ApplyConfig) error {
			c.ProcessorPayloads = payloads
			return nil
		})
	}
	err := fmt.Errorf("apply %s: no differ can apply layers: %w", desc.Digest, errdefs.ErrNotImplemented)
	for _, a := range s.appliers {
		var applied ocispec.Descriptor
		applied, err = a.Apply(ctx, desc, mounts, opts...)
		if errdefs.IsNotImplemented(err) {
			continue
		}
		if err != nil {
			return nil, errdefs.ToGRPC(err)
		}
		return &api.ApplyResponse{Applied: descToProto(applied)}, nil
	}
	return nil, errdefs.ToGRPC(err)
}

func (s *Service) Diff(ctx context.Context, r *api.DiffRequest) (*api.DiffResponse, error) {
	left, right := mountsFromProto(r.Left), mountsFromProto(r.Right)
	opt := func(c *diff.Config) error {
		c.MediaType, c.Reference, c.Labels = r.MediaType, r.Ref, r.Labels
		return nil
	}
	err := fmt.Errorf("diff: no differ can compare mounts: %w", errdefs.ErrNotImplemented)
	for _, c := range s.comparers {
		var d ocispec.Descriptor
		d, err = c.Compare(ctx, left, right, opt)
		if errdefs.IsNotImplemented(err) {
			continue
		}
		if err != nil {
			return nil, errdefs.ToGRPC(err)
		}
		return &api.DiffResponse{Diff: descToProto(d)}, nil
	}
	return nil, errdefs.ToGRPC(err)
}

func mountsFromProto(mounts []*types.Mount) []mount.Mount {
	out := make([]mount.Mount, 0, len(mounts))
	for _, m := range mounts {
		out = append(out, mount.Mount{Type: m.GetType(), Source: m.GetSource(), Target: m.GetTarget(), Options: m.GetOptions()})
	}
	return out
}

func descFromProto(d *types.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:   d.GetMediaType(),
		Digest:      digest.Digest(d.GetDigest()),
		Size:        d.GetSize(),
		Annotations: d.GetAnnotations(),
	}
}

func descToProto(d ocispec.Descriptor) *types.Descriptor {
	return &types.Descriptor{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size, Annotations: d.Annotations}
}
