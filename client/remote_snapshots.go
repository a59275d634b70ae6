package client

import (
	"context"
	"errors"
	"io"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	snapshotsapi "github.com/berth-containers/berth/api/services/snapshots/v1"
	"github.com/berth-containers/berth/api/types"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
)

// remoteSnapshotter is snapshots.Snapshotter over the Snapshots service,
// for one snapshotter by name.
type remoteSnapshotter struct {
	client snapshotsapi.SnapshotsClient
	name   string
}

// NewRemoteSnapshotter returns the snapshotter named name behind the
// Snapshots service on client's connection.
func NewRemoteSnapshotter(client snapshotsapi.SnapshotsClient, name string) snapshots.Snapshotter {
	return &remoteSnapshotter{client: client, name: name}
}

var (
	_ snapshots.Snapshotter = (*remoteSnapshotter)(nil)
	_ snapshots.Cleaner     = (*remoteSnapshotter)(nil)
)

func (s *remoteSnapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	resp, err := s.client.Stat(ctx, &snapshotsapi.StatSnapshotRequest{Snapshotter: s.name, Key: key})
	if err != nil {
		return snapshots.Info{}, errdefs.FromGRPC(err)
	}
	return snapshotInfoFromProto(resp.Info), nil
}

func (s *remoteSnapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	req := &snapshotsapi.UpdateSnapshotRequest{Snapshotter: s.name, Info: snapshotInfoToProto(info)}
	if len(fieldpaths) > 0 {
		req.UpdateMask = &fieldmaskpb.FieldMask{Paths: fieldpaths}
	}
	resp, err := s.client.Update(ctx, req)
	if err != nil {
		return snapshots.Info{}, errdefs.FromGRPC(err)
	}
	return snapshotInfoFromProto(resp.Info), nil
}

func (s *remoteSnapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	resp, err := s.client.Usage(ctx, &snapshotsapi.UsageRequest{Snapshotter: s.name, Key: key})
	if err != nil {
		return snapshots.Usage{}, errdefs.FromGRPC(err)
	}
	return snapshots.Usage{Size: resp.Size, Inodes: resp.Inodes}, nil
}

func (s *remoteSnapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	resp, err := s.client.Mounts(ctx, &snapshotsapi.MountsRequest{Snapshotter: s.name, Key: key})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return mountsFromProto(resp.Mounts), nil
}

func optLabels(opts []snapshots.Opt) (map[string]string, error) {
	var info snapshots.Info
	for _, o := range opts {
		if err := o(&info); err != nil {
			return nil, err
		}
	}
	return info.Labels, nil
}

func (s *remoteSnapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	labels, err := optLabels(opts)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Prepare(ctx, &snapshotsapi.PrepareSnapshotRequest{Snapshotter: s.name, Key: key, Parent: parent, Labels: labels})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return mountsFromProto(resp.Mounts), nil
}

func (s *remoteSnapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	labels, err := optLabels(opts)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.View(ctx, &snapshotsapi.ViewSnapshotRequest{Snapshotter: s.name, Key: key, Parent: parent, Labels: labels})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return mountsFromProto(resp.Mounts), nil
}

func (s *remoteSnapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	labels, err := optLabels(opts)
	if err != nil {
		return err
	}
	_, err = s.client.Commit(ctx, &snapshotsapi.CommitSnapshotRequest{Snapshotter: s.name, Name: name, Key: key, Labels: labels})
	return errdefs.FromGRPC(err)
}

func (s *remoteSnapshotter) Remove(ctx context.Context, key string) error {
	_, err := s.client.Remove(ctx, &snapshotsapi.RemoveSnapshotRequest{Snapshotter: s.name, Key: key})
	return errdefs.FromGRPC(err)
}

func (s *remoteSnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.client.List(ctx, &snapshotsapi.ListSnapshotsRequest{Snapshotter: s.name, Filters: filters})
	if err != nil {
		return errdefs.FromGRPC(err)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errdefs.FromGRPC(err)
		}
		for _, info := range resp.Info {
			if err := fn(ctx, snapshotInfoFromProto(info)); err != nil {
				return err
			}
		}
	}
}

func (s *remoteSnapshotter) Cleanup(ctx context.Context) error {
	_, err := s.client.Cleanup(ctx, &snapshotsapi.CleanupRequest{Snapshotter: s.name})
	return errdefs.FromGRPC(err)
}

// Close does nothing: the connection is the client's.
func (s *remoteSnapshotter) Close() error { return nil }

func mountsFromProto(ms []*types.Mount) []mount.Mount {
	out := make([]mount.Mount, 0, len(ms))
	for _, m := range ms {
		out = append(out, mount.Mount{Type: m.GetType(), Source: m.GetSource(), Target: m.GetTarget(), Options: m.GetOptions()})
	}
	return out
}

func mountsToProto(ms []mount.Mount) []*types.Mount {
	out := make([]*types.Mount, 0, len(ms))
	for _, m := range ms {
		out = append(out, &types.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	return out
}

func snapshotInfoFromProto(p *snapshotsapi.Info) snapshots.Info {
	info := snapshots.Info{
		Name: p.GetName(), Parent: p.GetParent(), Labels: p.GetLabels(),
		Created: p.GetCreatedAt().AsTime(), Updated: p.GetUpdatedAt().AsTime(),
	}
	switch p.GetKind() {
	case snapshotsapi.Kind_VIEW:
		info.Kind = snapshots.KindView
	case snapshotsapi.Kind_ACTIVE:
		info.Kind = snapshots.KindActive
	case snapshotsapi.Kind_COMMITTED:
		info.Kind = snapshots.KindCommitted
	}
	return info
}

func snapshotInfoToProto(info snapshots.Info) *snapshotsapi.Info {
	p := &snapshotsapi.Info{Name: info.Name, Parent: info.Parent, Labels: info.Labels}
	switch info.Kind {
	case snapshots.KindView:
		p.Kind = snapshotsapi.Kind_VIEW
	case snapshots.KindActive:
		p.Kind = snapshotsapi.Kind_ACTIVE
	case snapshots.KindCommitted:
		p.Kind = snapshotsapi.Kind_COMMITTED
	}
	return p
}
