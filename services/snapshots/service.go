// Package snapshots serves containerd.services.snapshots.v1.Snapshots over
// the namespaced snapshotters, chosen by name in each request.
package snapshots

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	api "github.com/berth-containers/berth/api/services/snapshots/v1"
	"github.com/berth-containers/berth/api/types"
	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/plugin"
	"github.com/berth-containers/berth/services/storage"
	"github.com/berth-containers/berth/snapshots"
)

// taskLister is the part of the runtime the service asks which tasks live.
type taskLister interface {
	TaskIDs(ctx context.Context) ([]string, error)
}

// taskRootfs finds the container, among those with a task in the context's
// namespace, whose root file system is snapshot key of snapshotter.
func taskRootfs(tasks taskLister, containers *metadata.ContainerStore) func(ctx context.Context, snapshotter, key string) (string, bool, error) {
	return func(ctx context.Context, snapshotter, key string) (string, bool, error) {
		ids, err := tasks.TaskIDs(ctx)
		if err != nil || len(ids) == 0 {
			return "", false, err
		}
		return containers.RootfsOwner(ctx, ids, snapshotter, key)
	}
}

func init() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.GRPCPlugin,
		ID:       "snapshots",
		Requires: []plugin.Type{plugin.ServicePlugin, plugin.GCPlugin, plugin.RuntimePluginV2},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			s, err := storage.GetStores(ic)
			if err != nil {
				return nil, err
			}
			svc := NewService(s.Snapshotters, ic.Events)
			if gc := storage.GetCollector(ic); gc != nil {
				svc.local.collect = gc.Trigger
				svc.local.collectSync = gc.Collect
			}
			if rt, err := ic.GetByID(plugin.RuntimePluginV2, "task"); err == nil {
				if tl, ok := rt.(taskLister); ok {
					svc.local.taskRootfs = taskRootfs(tl, metadata.NewContainerStore(s.DB))
				}
			}
			return svc, nil
		},
	})
}

// NewService returns the gRPC service over the snapshotters by name.
func NewService(sns map[string]snapshots.Snapshotter, publisher events.Publisher) *Service {
	return &Service{local: &local{snapshotters: sns, publisher: publisher}}
}

// Service is the gRPC face of the snapshotters.
type Service struct {
	api.UnimplementedSnapshotsServer
	local *local
}

// Register implements the server's gRPC service registration.
func (s *Service) Register(srv *grpc.Server) error {
	api.RegisterSnapshotsServer(srv, s)
	return nil
}

// listBatch is how many infos one List message carries.
const listBatch = 100

func (s *Service) Prepare(ctx context.Context, r *api.PrepareSnapshotRequest) (*api.PrepareSnapshotResponse, error) {
	mounts, err := s.local.Prepare(ctx, r.Snapshotter, r.Key, r.Parent, r.Labels)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.PrepareSnapshotResponse{Mounts: MountsToProto(mounts)}, nil
}

func (s *Service) View(ctx context.Context, r *api.ViewSnapshotRequest) (*api.ViewSnapshotResponse, error) {
	mounts, err := s.local.View(ctx, r.Snapshotter, r.Key, r.Parent, r.Labels)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.ViewSnapshotResponse{Mounts: MountsToProto(mounts)}, nil
}

func (s *Service) Mounts(ctx context.Context, r *api.MountsRequest) (*api.MountsResponse, error) {
	sn, err := s.local.get(r.Snapshotter)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	mounts, err := sn.Mounts(ctx, r.Key)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.MountsResponse{Mounts: MountsToProto(mounts)}, nil
}

func (s *Service) Commit(ctx context.Context, r *api.CommitSnapshotRequest) (*emptypb.Empty, error) {
	if err := s.local.Commit(ctx, r.Snapshotter, r.Name, r.Key, r.Labels); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *Service) Remove(ctx context.Context, r *api.RemoveSnapshotRequest) (*emptypb.Empty, error) {
	if err := s.local.Remove(ctx, r.Snapshotter, r.Key); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *Service) Stat(ctx context.Context, r *api.StatSnapshotRequest) (*api.StatSnapshotResponse, error) {
	sn, err := s.local.get(r.Snapshotter)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	info, err := sn.Stat(ctx, r.Key)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.StatSnapshotResponse{Info: InfoToProto(info)}, nil
}

func (s *Service) Update(ctx context.Context, r *api.UpdateSnapshotRequest) (*api.UpdateSnapshotResponse, error) {
	if r.Info == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("update snapshot: info is required: %w", errdefs.ErrInvalidArgument))
	}
	sn, err := s.local.get(r.Snapshotter)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	info, err := sn.Update(ctx, InfoFromProto(r.Info), r.GetUpdateMask().GetPaths()...)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.UpdateSnapshotResponse{Info: InfoToProto(info)}, nil
}

func (s *Service) List(r *api.ListSnapshotsRequest, stream api.Snapshots_ListServer) error {
	sn, err := s.local.get(r.Snapshotter)
	if err != nil {
		return errdefs.ToGRPC(err)
	}
	var batch []*api.Info
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := stream.Send(&api.ListSnapshotsResponse{Info: batch})
		batch = nil
		return err
	}
	err = sn.Walk(stream.Context(), func(ctx context.Context, info snapshots.Info) error {
		batch = append(batch, InfoToProto(info))
		if len(batch) >= listBatch {
			return flush()
		}
		return nil
	}, r.Filters...)
	if err != nil {
		return errdefs.ToGRPC(err)
	}
	return flush()
}

func (s *Service) Usage(ctx context.Context, r *api.UsageRequest) (*api.UsageResponse, error) {
	sn, err := s.local.get(r.Snapshotter)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	u, err := sn.Usage(ctx, r.Key)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.UsageResponse{Size: u.Size, Inodes: u.Inodes}, nil
}

func (s *Service) Cleanup(ctx context.Context, r *api.CleanupRequest) (*emptypb.Empty, error) {
	if err := s.local.Cleanup(ctx, r.Snapshotter); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

// MountsToProto converts mounts for the wire.
func MountsToProto(mounts []mount.Mount) []*types.Mount {
	out := make([]*types.Mount, 0, len(mounts))
	for _, m := range mounts {
		out = append(out, &types.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	return out
}

// MountsFromProto converts mounts from the wire.
func MountsFromProto(mounts []*types.Mount) []mount.Mount {
	out := make([]mount.Mount, 0, len(mounts))
	for _, m := range mounts {
		out = append(out, mount.Mount{Type: m.GetType(), Source: m.GetSource(), Target: m.GetTarget(), Options: m.GetOptions()})
	}
	return out
}

// InfoToProto converts a snapshot's info for the wire.
func InfoToProto(info snapshots.Info) *api.Info {
	return &api.Info{
		Name:      info.Name,
		Parent:    info.Parent,
		Kind:      kindToProto(info.Kind),
		CreatedAt: timestamppb.New(info.Created),
		UpdatedAt: timestamppb.New(info.Updated),
		Labels:    info.Labels,
	}
}

// InfoFromProto converts a snapshot's info from the wire.
func InfoFromProto(p *api.Info) snapshots.Info {
	return snapshots.Info{
		Name:    p.GetName(),
		Parent:  p.GetParent(),
		Kind:    kindFromProto(p.GetKind()),
		Created: p.GetCreatedAt().AsTime(),
		Updated: p.GetUpdatedAt().AsTime(),
		Labels:  p.GetLabels(),
	}
}

func kindToProto(k snapshots.Kind) api.Kind {
	switch k {
	case snapshots.KindView:
		return api.Kind_VIEW
	case snapshots.KindActive:
		return api.Kind_ACTIVE
	case snapshots.KindCommitted:
		return api.Kind_COMMITTED
	}
	return api.Kind_UNKNOWN
}

func kindFromProto(k api.Kind) snapshots.Kind {
	switch k {
	case api.Kind_VIEW:
		return snapshots.KindView
	case api.Kind_ACTIVE:
		return snapshots.KindActive
	case api.Kind_COMMITTED:
		return snapshots.KindCommitted
	}
	return snapshots.KindUnknown
}
