// Package containers serves containerd.services.containers.v1.Containers.
package containers

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	api "github.com/berth-containers/berth/api/services/containers/v1"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/plugin"
)

func init() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.GRPCPlugin,
		ID:       "containers",
		Requires: []plugin.Type{plugin.MetadataPlugin, plugin.RuntimePluginV2},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			m, err := ic.GetByID(plugin.MetadataPlugin, "bolt")
			if err != nil {
				return nil, err
			}
			l := &local{store: metadata.NewContainerStore(m.(*metadata.DB)), publisher: ic.Events}
			if rt, err := ic.GetByID(plugin.RuntimePluginV2, "task"); err == nil {
				if tg, ok := rt.(taskGetter); ok {
					l.tasks = tg
				}
			}
			return &service{local: l}, nil
		},
	})
}

type service struct {
	api.UnimplementedContainersServer
	local *local
}

func (s *service) Register(srv *grpc.Server) error {
	api.RegisterContainersServer(srv, s)
	return nil
}

func (s *service) Get(ctx context.Context, r *api.GetContainerRequest) (*api.GetContainerResponse, error) {
	c, err := s.local.Get(ctx, r.Id)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.GetContainerResponse{Container: toProto(&c)}, nil
}

func (s *service) List(ctx context.Context, r *api.ListContainersRequest) (*api.ListContainersResponse, error) {
	l, err := s.encodeList(ctx, r.Filters)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return l.response(), nil
}

// ListStream sends one message per container, as containerd does. The
// records are read first and sent after: a client that reads slowly must
// not hold the database's read transaction (bbolt cannot grow its map
// while one is open, so every writer would wait on that client).
func (s *service) ListStream(r *api.ListContainersRequest, stream api.Containers_ListStreamServer) error {
	l, err := s.encodeList(stream.Context(), r.Filters)
	if err != nil {
		return errdefs.ToGRPC(err)
	}
	for i := range l.containers {
		if err := stream.Send(l.message(i)); err != nil {
			return err
		}
	}
	return nil
}

// encodeList encodes the matching records as the store reads them (see
// encode.go).
func (s *service) encodeList(ctx context.Context, filters []string) (*encodedList, error) {
	l := &encodedList{}
	if err := s.local.WalkStored(ctx, l.add, filters...); err != nil {
		return nil, err
	}
	return l, nil
}

func (s *service) Create(ctx context.Context, r *api.CreateContainerRequest) (*api.CreateContainerResponse, error) {
	if r.Container == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("create container: container is required: %w", errdefs.ErrInvalidArgument))
	}
	c, err := s.local.Create(ctx, fromProto(r.Container))
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.CreateContainerResponse{Container: toProto(&c)}, nil
}

func (s *service) Update(ctx context.Context, r *api.UpdateContainerRequest) (*api.UpdateContainerResponse, error) {
	if r.Container == nil || r.Container.Id == "" {
		return nil, errdefs.ToGRPC(fmt.Errorf("update container: container id is required: %w", errdefs.ErrInvalidArgument))
	}
	c, err := s.local.Update(ctx, fromProto(r.Container), r.GetUpdateMask().GetPaths()...)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.UpdateContainerResponse{Container: toProto(&c)}, nil
}

func (s *service) Delete(ctx context.Context, r *api.DeleteContainerRequest) (*emptypb.Empty, error) {
	if err := s.local.Delete(ctx, r.Id); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func toProto(c *metadata.Container) *api.Container {
	return &api.Container{
		Id: c.ID, Labels: c.Labels, Image: c.Image,
		Runtime:     &api.Container_Runtime{Name: c.Runtime.Name, Options: c.Runtime.Options},
		Spec:        c.Spec,
		Snapshotter: c.Snapshotter, SnapshotKey: c.SnapshotKey,
		CreatedAt: timestamppb.New(c.CreatedAt), UpdatedAt: timestamppb.New(c.UpdatedAt),
		Extensions: c.Extensions,
	}
}

func fromProto(p *api.Container) metadata.Container {
	return metadata.Container{
		ID: p.Id, Labels: p.Labels, Image: p.Image,
		Runtime:     metadata.RuntimeInfo{Name: p.GetRuntime().GetName(), Options: p.GetRuntime().GetOptions()},
		Spec:        p.Spec,
		Snapshotter: p.Snapshotter, SnapshotKey: p.SnapshotKey,
		Extensions: p.Extensions,
	}
}
