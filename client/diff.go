package client

import (
	"context"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/types/known/anypb"

	diffapi "github.com/berth-containers/berth/api/services/diff/v1"
	"github.com/berth-containers/berth/api/types"
	"github.com/berth-containers/berth/diff"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
)

// DiffService applies and computes layers in the daemon.
type DiffService interface {
	diff.Applier
	diff.Comparer
}

// DiffAPIService is the raw Diff service client.
func (c *Client) DiffAPIService() diffapi.DiffClient { return diffapi.NewDiffClient(c.conn) }

// DiffService returns the daemon's differ as a diff.Applier and Comparer.
func (c *Client) DiffService() DiffService { return NewRemoteDiff(c.DiffAPIService()) }

// NewRemoteDiff returns a differ that calls the Diff service.
func NewRemoteDiff(client diffapi.DiffClient) DiffService { return &remoteDiff{client: client} }

type remoteDiff struct {
	client diffapi.DiffClient
}

func (r *remoteDiff) Apply(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount, opts ...diff.ApplyOpt) (ocispec.Descriptor, error) {
	var cfg diff.ApplyConfig
	for _, o := range opts {
		if err := o(ctx, desc, &cfg); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	req := &diffapi.ApplyRequest{Diff: descToProto(desc), Mounts: mountsToProto(mounts)}
	if len(cfg.ProcessorPayloads) > 0 {
		req.Payloads = map[string]*anypb.Any{}
		for k, v := range cfg.ProcessorPayloads {
			req.Payloads[k] = &anypb.Any{TypeUrl: k, Value: v}
		}
	}
	resp, err := r.client.Apply(ctx, req)
	if err != nil {
		return ocispec.Descriptor{}, errdefs.FromGRPC(err)
	}
	return descFromProto(resp.Applied), nil
}

func (r *remoteDiff) Compare(ctx context.Context, lower, upper []mount.Mount, opts ...diff.Opt) (ocispec.Descriptor, error) {
	var cfg diff.Config
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	resp, err := r.client.Diff(ctx, &diffapi.DiffRequest{
		Left: mountsToProto(lower), Right: mountsToProto(upper),
		MediaType: cfg.MediaType, Ref: cfg.Reference, Labels: cfg.Labels,
	})
	if err != nil {
		return ocispec.Descriptor{}, errdefs.FromGRPC(err)
	}
	return descFromProto(resp.Diff), nil
}

func descToProto(d ocispec.Descriptor) *types.Descriptor {
	return &types.Descriptor{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size, Annotations: d.Annotations}
}

func descFromProto(d *types.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType: d.GetMediaType(), Digest: digest.Digest(d.GetDigest()),
		Size: d.GetSize(), Annotations: d.GetAnnotations(),
	}
}
