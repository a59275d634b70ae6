// Package leases serves containerd.services.leases.v1.Leases.
package leases

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	api "github.com/berth-containers/berth/api/services/leases/v1"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/plugin"
	"github.com/berth-containers/berth/services/storage"
)

func init() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.GRPCPlugin,
		ID:       "leases",
		Requires: []plugin.Type{plugin.MetadataPlugin, plugin.GCPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			m, err := ic.GetByID(plugin.MetadataPlugin, "bolt")
			if err != nil {
				return nil, err
			}
			db := m.(*metadata.DB)
			gc := directCollector(db)
			if c := storage.GetCollector(ic); c != nil {
				gc = collector{trigger: c.Trigger, sync: c.Collect}
			}
			return &service{store: metadata.NewLeaseStore(db), gc: gc}, nil
		},
	})
}

type service struct {
	api.UnimplementedLeasesServer
	store *metadata.LeaseStore
	gc    collector
}

func (s *service) Register(srv *grpc.Server) error {
	api.RegisterLeasesServer(srv, s)
	return nil
}

// Create makes a lease; without an id the service picks a random one, as
// containerd's does, and the response names it.
func (s *service) Create(ctx context.Context, r *api.CreateRequest) (*api.CreateResponse, error) {
	id := r.Id
	if id == "" {
		id = randomID()
	}
	l, err := s.store.Create(ctx, metadata.Lease{ID: id, Labels: r.Labels})
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.CreateResponse{Lease: toProto(l)}, nil
}

// randomID is a lease id no client asked for: the time's nanoseconds and
// random hex, a valid identifier.
func randomID() string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%d-%s", time.Now().Nanosecond(), hex.EncodeToString(b[:]))
}

func (s *service) Delete(ctx context.Context, r *api.DeleteRequest) (*emptypb.Empty, error) {
	if err := s.store.Delete(ctx, r.Id); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if err := s.gc.collect(ctx, r.Sync); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) List(ctx context.Context, r *api.ListRequest) (*api.ListResponse, error) {
	ls, err := s.store.List(ctx, r.Filters...)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	out := &api.ListResponse{}
	for _, l := range ls {
		out.Leases = append(out.Leases, toProto(l))
	}
	return out, nil
}

func (s *service) AddResource(ctx context.Context, r *api.AddResourceRequest) (*emptypb.Empty, error) {
	res, err := resource(r.Resource)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if err := s.store.AddResource(ctx, r.Id, res); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) DeleteResource(ctx context.Context, r *api.DeleteResourceRequest) (*emptypb.Empty, error) {
	res, err := resource(r.Resource)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if err := s.store.DeleteResource(ctx, r.Id, res); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) ListResources(ctx context.Context, r *api.ListResourcesRequest) (*api.ListResourcesResponse, error) {
	rs, err := s.store.ListResources(ctx, r.Id)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	out := &api.ListResourcesResponse{}
	for _, res := range rs {
		out.Resources = append(out.Resources, &api.Resource{Id: res.ID, Type: res.Type})
	}
	return out, nil
}

func resource(r *api.Resource) (metadata.Resource, error) {
	if r == nil {
		return metadata.Resource{}, fmt.Errorf("resource is required: %w", errdefs.ErrInvalidArgument)
	}
	return metadata.Resource{ID: r.Id, Type: r.Type}, nil
}

func toProto(l metadata.Lease) *api.Lease {
	return &api.Lease{Id: l.ID, CreatedAt: timestamppb.New(l.CreatedAt), Labels: l.Labels}
}
