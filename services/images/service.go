// Package images serves containerd.services.images.v1.Images over the
// metadata image store.
package images

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	api "github.com/berth-containers/berth/api/services/images/v1"
	"github.com/berth-containers/berth/api/types"
	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/plugin"
	"github.com/berth-containers/berth/services/storage"
)

func init() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.GRPCPlugin,
		ID:       "images",
		Requires: []plugin.Type{plugin.ServicePlugin, plugin.GCPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			s, err := storage.GetStores(ic)
			if err != nil {
				return nil, err
			}
			svc := NewService(metadata.NewImageStore(s.DB), ic.Events)
			if gc := storage.GetCollector(ic); gc != nil {
				svc.SetCollector(gc.Trigger, gc.Collect)
			}
			return svc, nil
		},
	})
}

// NewService returns the gRPC service over store.
func NewService(store *metadata.ImageStore, publisher events.Publisher) *Service {
	return &Service{local: &local{store: store, publisher: publisher}}
}

// SetCollector sets the garbage collection run after deletes: collect is
// asked for after each one, collectSync is waited for by sync deletes.
func (s *Service) SetCollector(collect func(), collectSync func(context.Context) error) {
	s.local.collect, s.local.collectSync = collect, collectSync
}

// Service is the gRPC face of the image store.
type Service struct {
	api.UnimplementedImagesServer
	local *local
}

// Register implements the server's gRPC service registration.
func (s *Service) Register(srv *grpc.Server) error {
	api.RegisterImagesServer(srv, s)
	return nil
}

func (s *Service) Get(ctx context.Context, r *api.GetImageRequest) (*api.GetImageResponse, error) {
	img, err := s.local.Get(ctx, r.Name)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.GetImageResponse{Image: imageToProto(img)}, nil
}

func (s *Service) List(ctx context.Context, r *api.ListImagesRequest) (*api.ListImagesResponse, error) {
	imgs, err := s.local.List(ctx, r.Filters...)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	out := &api.ListImagesResponse{Images: make([]*api.Image, 0, len(imgs))}
	for _, img := range imgs {
		out.Images = append(out.Images, imageToProto(img))
	}
	return out, nil
}

func (s *Service) Create(ctx context.Context, r *api.CreateImageRequest) (*api.CreateImageResponse, error) {
	if r.Image == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("create image: image is required: %w", errdefs.ErrInvalidArgument))
	}
	img, err := s.local.Create(ctx, imageFromProto(r.Image))
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.CreateImageResponse{Image: imageToProto(img)}, nil
}

func (s *Service) Update(ctx context.Context, r *api.UpdateImageRequest) (*api.UpdateImageResponse, error) {
	if r.Image == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("update image: image is required: %w", errdefs.ErrInvalidArgument))
	}
	img, err := s.local.Update(ctx, imageFromProto(r.Image), r.GetUpdateMask().GetPaths()...)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.UpdateImageResponse{Image: imageToProto(img)}, nil
}

func (s *Service) Delete(ctx context.Context, r *api.DeleteImageRequest) (*emptypb.Empty, error) {
	if err := s.local.Delete(ctx, r.Name, r.Sync); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func imageToProto(img metadata.Image) *api.Image {
	return &api.Image{
		Name:   img.Name,
		Labels: img.Labels,
		Target: &types.Descriptor{
			MediaType:   img.Target.MediaType,
			Digest:      img.Target.Digest.String(),
			Size:        img.Target.Size,
			Annotations: img.Target.Annotations,
		},
		CreatedAt: timestamppb.New(img.CreatedAt),
		UpdatedAt: timestamppb.New(img.UpdatedAt),
	}
}

func imageFromProto(p *api.Image) metadata.Image {
	t := p.GetTarget()
	return metadata.Image{
		Name:   p.GetName(),
		Labels: p.GetLabels(),
		Target: ocispec.Descriptor{
			MediaType:   t.GetMediaType(),
			Digest:      digest.Digest(t.GetDigest()),
			Size:        t.GetSize(),
			Annotations: t.GetAnnotations(),
		},
	}
}
