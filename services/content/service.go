// Package content serves containerd.services.content.v1.Content over the
// namespaced content store.
package content

import (
	"context"
	"fmt"
	"io"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	api "github.com/berth-containers/berth/api/services/content/v1"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/plugin"
	"github.com/berth-containers/berth/services/storage"
)

func init() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.GRPCPlugin,
		ID:       "content",
		Requires: []plugin.Type{plugin.ServicePlugin, plugin.GCPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			s, err := storage.GetStores(ic)
			if err != nil {
				return nil, err
			}
			var collect func()
			if gc := storage.GetCollector(ic); gc != nil {
				collect = gc.Trigger
			}
			return NewService(s.Content, ic.Events, collect), nil
		},
	})
}

// NewService returns the gRPC service over store; collect (may be nil) is
// called after each delete.
func NewService(store content.Store, publisher events.Publisher, collect func()) *Service {
	return &Service{local: &local{Store: store, publisher: publisher, collect: collect}}
}

// Service is the gRPC face of the content store.
type Service struct {
	api.UnimplementedContentServer
	local *local
}

// Register implements the server's gRPC service registration.
func (s *Service) Register(srv *grpc.Server) error {
	api.RegisterContentServer(srv, s)
	return nil
}

// Chunk sizes: reads are streamed in 1 MiB messages, well under gRPC's
// default 4 MiB limit; List sends infos in batches.
const (
	readChunk = 1 << 20
	smallRead = 64 << 10
	listBatch = 100
)

var bufPool = sync.Pool{New: func() interface{} { b := make([]byte, readChunk); return &b }}

func (s *Service) Info(ctx context.Context, r *api.InfoRequest) (*api.InfoResponse, error) {
	dgst, err := parseDigest(r.Digest)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	info, err := s.local.Info(ctx, dgst)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.InfoResponse{Info: infoToProto(info)}, nil
}

func (s *Service) Update(ctx context.Context, r *api.UpdateRequest) (*api.UpdateResponse, error) {
	if r.Info == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("update content: info is required: %w", errdefs.ErrInvalidArgument))
	}
	dgst, err := parseDigest(r.Info.Digest)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	info, err := s.local.Update(ctx, content.Info{Digest: dgst, Labels: r.Info.Labels}, r.GetUpdateMask().GetPaths()...)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.UpdateResponse{Info: infoToProto(info)}, nil
}

func (s *Service) List(r *api.ListContentRequest, stream api.Content_ListServer) error {
	var batch []*api.Info
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := stream.Send(&api.ListContentResponse{Info: batch})
		batch = nil
		return err
	}
	err := s.local.Walk(stream.Context(), func(info content.Info) error {
		batch = append(batch, infoToProto(info))
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

func (s *Service) Delete(ctx context.Context, r *api.DeleteContentRequest) (*emptypb.Empty, error) {
	dgst, err := parseDigest(r.Digest)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if err := s.local.Delete(ctx, dgst); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

// Read streams the blob from offset for size bytes (to the end if size
// is zero or runs past it).
func (s *Service) Read(r *api.ReadContentRequest, stream api.Content_ReadServer) error {
	ctx := stream.Context()
	dgst, err := parseDigest(r.Digest)
	if err != nil {
		return errdefs.ToGRPC(err)
	}
	ra, err := s.local.ReaderAt(ctx, ocispec.Descriptor{Digest: dgst})
	if err != nil {
		return errdefs.ToGRPC(err)
	}
	defer ra.Close()
	off, size := r.Offset, r.Size
	if off < 0 {
		off = 0
	}
	if off > ra.Size() {
		// OutOfRange, as containerd's content server answers (errdefs
		// has no kind for it).
		return status.Errorf(codes.OutOfRange, "read content %s: offset %d is past its size %d", dgst, off, ra.Size())
	}
	if size <= 0 || off+size > ra.Size() {
		size = ra.Size() - off
	}
	var buf []byte
	if size < smallRead {
		// Manifests, indexes and configs: a buffer of their size. A
		// pooled 1 MiB buffer for each (a sync.Pool is emptied by every
		// GC) was a quarter of what berthd allocated under a burst of
		// `ctr run`s, and with it most of its garbage collections.
		buf = make([]byte, size)
	} else {
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		buf = *bp
	}
	end := off + size
	for off < end {
		n := int64(len(buf))
		if end-off < n {
			n = end - off
		}
		got, err := ra.ReadAt(buf[:n], off)
		if got > 0 {
			if serr := stream.Send(&api.ReadContentResponse{Offset: off, Data: buf[:got]}); serr != nil {
				return serr
			}
			off += int64(got)
		}
		if err != nil && !(err == io.EOF && off == end) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return errdefs.ToGRPC(fmt.Errorf("read content %s at %d: %w", dgst, off, err))
		}
	}
	return nil
}

func (s *Service) Status(ctx context.Context, r *api.StatusRequest) (*api.StatusResponse, error) {
	st, err := s.local.Status(ctx, r.Ref)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.StatusResponse{Status: statusToProto(st)}, nil
}

func (s *Service) ListStatuses(ctx context.Context, r *api.ListStatusesRequest) (*api.ListStatusesResponse, error) {
	sts, err := s.local.ListStatuses(ctx, r.Filters...)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	out := &api.ListStatusesResponse{}
	for _, st := range sts {
		out.Statuses = append(out.Statuses, statusToProto(st))
	}
	return out, nil
}

func (s *Service) Abort(ctx context.Context, r *api.AbortRequest) (*emptypb.Empty, error) {
	if err := s.local.Abort(ctx, r.Ref); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

// Write runs one ingest session; see write.go.
func (s *Service) Write(stream api.Content_WriteServer) error {
	return errdefs.ToGRPC(s.local.write(stream))
}

func infoToProto(info content.Info) *api.Info {
	return &api.Info{
		Digest:    info.Digest.String(),
		Size:      info.Size,
		CreatedAt: timestamppb.New(info.CreatedAt),
		UpdatedAt: timestamppb.New(info.UpdatedAt),
		Labels:    info.Labels,
	}
}

func statusToProto(st content.Status) *api.Status {
	return &api.Status{
		Ref:       st.Ref,
		Offset:    st.Offset,
		Total:     st.Total,
		Expected:  st.Expected.String(),
		StartedAt: timestamppb.New(st.StartedAt),
		UpdatedAt: timestamppb.New(st.UpdatedAt),
	}
}
