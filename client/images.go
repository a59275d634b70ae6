package client

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	imagesapi "github.com/berth-containers/berth/api/services/images/v1"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
)

// ImagesAPIService is the raw Images service client.
func (c *Client) ImagesAPIService() imagesapi.ImagesClient {
	return imagesapi.NewImagesClient(c.conn)
}

// ImageInfo is an image record: a name pointing at a root descriptor (an
// index or a manifest).
type ImageInfo struct {
	Name      string
	Labels    map[string]string
	Target    ocispec.Descriptor
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ImageStore manages image records in the context's namespace.
type ImageStore struct{ c *Client }

// ImageService returns the image record manager.
func (c *Client) ImageService() *ImageStore { return &ImageStore{c: c} }

// Get returns the record named name.
func (s *ImageStore) Get(ctx context.Context, name string) (ImageInfo, error) {
	resp, err := s.c.ImagesAPIService().Get(s.c.withNamespace(ctx), &imagesapi.GetImageRequest{Name: name})
	if err != nil {
		return ImageInfo{}, errdefs.FromGRPC(err)
	}
	return imageFromProto(resp.Image), nil
}

// List returns the records matching any of the filters (name,
// labels.KEY, target.digest, target.mediatype).
func (s *ImageStore) List(ctx context.Context, filters ...string) ([]ImageInfo, error) {
	resp, err := s.c.ImagesAPIService().List(s.c.withNamespace(ctx), &imagesapi.ListImagesRequest{Filters: filters})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	out := make([]ImageInfo, 0, len(resp.Images))
	for _, p := range resp.Images {
		out = append(out, imageFromProto(p))
	}
	return out, nil
}

// Create creates a record; AlreadyExists if the name is taken.
func (s *ImageStore) Create(ctx context.Context, img ImageInfo) (ImageInfo, error) {
	resp, err := s.c.ImagesAPIService().Create(s.c.withNamespace(ctx), &imagesapi.CreateImageRequest{Image: imageToProto(img)})
	if err != nil {
		return ImageInfo{}, errdefs.FromGRPC(err)
	}
	return imageFromProto(resp.Image), nil
}

// Update changes the fields named ("labels", "labels.KEY", "target");
// none means labels and target.
func (s *ImageStore) Update(ctx context.Context, img ImageInfo, fieldpaths ...string) (ImageInfo, error) {
	req := &imagesapi.UpdateImageRequest{Image: imageToProto(img)}
	if len(fieldpaths) > 0 {
		req.UpdateMask = &fieldmaskpb.FieldMask{Paths: fieldpaths}
	}
	resp, err := s.c.ImagesAPIService().Update(s.c.withNamespace(ctx), req)
	if err != nil {
		return ImageInfo{}, errdefs.FromGRPC(err)
	}
	return imageFromProto(resp.Image), nil
}

// Delete deletes the record; with sync it waits for the garbage
// collection that frees what only this image held.
func (s *ImageStore) Delete(ctx context.Context, name string, sync bool) error {
	_, err := s.c.ImagesAPIService().Delete(s.c.withNamespace(ctx), &imagesapi.DeleteImageRequest{Name: name, Sync: sync})
	return errdefs.FromGRPC(err)
}

func imageFromProto(p *imagesapi.Image) ImageInfo {
	return ImageInfo{
		Name:      p.GetName(),
		Labels:    p.GetLabels(),
		Target:    descFromProto(p.GetTarget()),
		CreatedAt: p.GetCreatedAt().AsTime(),
		UpdatedAt: p.GetUpdatedAt().AsTime(),
	}
}

func imageToProto(img ImageInfo) *imagesapi.Image {
	return &imagesapi.Image{Name: img.Name, Labels: img.Labels, Target: descToProto(img.Target)}
}

// Image is a handle on an image record and its content, for one platform.
type Image struct {
	c        *Client
	i        ImageInfo
	platform platforms.MatchComparer
}

// NewImage returns a handle on img for this host's platform.
func NewImage(c *Client, img ImageInfo) *Image {
	return &Image{c: c, i: img, platform: platforms.DefaultMatcher()}
}

// NewImageWithPlatform returns a handle on img for platform.
func NewImageWithPlatform(c *Client, img ImageInfo, platform platforms.MatchComparer) *Image {
	return &Image{c: c, i: img, platform: platform}
}

// GetImage returns the image named name.
func (c *Client) GetImage(ctx context.Context, name string) (*Image, error) {
	img, err := c.ImageService().Get(c.withNamespace(ctx), name)
	if err != nil {
		return nil, err
	}
	return NewImage(c, img), nil
}

// ListImages returns the images matching any of the filters.
func (c *Client) ListImages(ctx context.Context, filters ...string) ([]*Image, error) {
	imgs, err := c.ImageService().List(c.withNamespace(ctx), filters...)
	if err != nil {
		return nil, err
	}
	out := make([]*Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, NewImage(c, img))
	}
	return out, nil
}

// Name is the image's name.
func (i *Image) Name() string { return i.i.Name }

// Target is the image's root descriptor: an index or a manifest.
func (i *Image) Target() ocispec.Descriptor { return i.i.Target }

// Labels are the image record's labels.
func (i *Image) Labels() map[string]string { return i.i.Labels }

// Metadata is the image record.
func (i *Image) Metadata() ImageInfo { return i.i }

// Platform is the platform the handle resolves manifests for.
func (i *Image) Platform() platforms.MatchComparer { return i.platform }

// Config returns the descriptor of the image's config for the platform.
func (i *Image) Config(ctx context.Context) (ocispec.Descriptor, error) {
	ctx = i.c.withNamespace(ctx)
	return images.Config(ctx, i.c.ContentStore(), i.i.Target, i.platform)
}

// Spec reads the image's config for the platform.
func (i *Image) Spec(ctx context.Context) (ocispec.Image, error) {
	ctx = i.c.withNamespace(ctx)
	desc, err := i.Config(ctx)
	if err != nil {
		return ocispec.Image{}, err
	}
	return images.ReadConfig(ctx, i.c.ContentStore(), desc)
}

// RootFS returns the diff IDs of the image's layers, bottom first.
func (i *Image) RootFS(ctx context.Context) ([]digest.Digest, error) {
	ctx = i.c.withNamespace(ctx)
	desc, err := i.Config(ctx)
	if err != nil {
		return nil, err
	}
	return images.RootFS(ctx, i.c.ContentStore(), desc)
}

// Usage is the size of the distinct blobs the image references for its
// platform (those present; missing manifests are not descended into).
func (i *Image) Usage(ctx context.Context) (int64, error) {
	ctx = i.c.withNamespace(ctx)
	return images.Usage(ctx, i.c.ContentStore(), i.i.Target, i.platform)
}

// Platforms lists the platforms the image has manifests for.
func (i *Image) Platforms(ctx context.Context) ([]ocispec.Platform, error) {
	ctx = i.c.withNamespace(ctx)
	return images.Platforms(ctx, i.c.ContentStore(), i.i.Target)
}

// ImageStatus is what Check found of an image's content.
type ImageStatus struct {
	// Available is false when the manifest itself is missing.
	Available bool
	Required  []ocispec.Descriptor
	Present   []ocispec.Descriptor
	Missing   []ocispec.Descriptor
}

// Check reports which of the image's blobs for its platform are present.
func (i *Image) Check(ctx context.Context) (ImageStatus, error) {
	ctx = i.c.withNamespace(ctx)
	avail, req, present, missing, err := images.Check(ctx, i.c.ContentStore(), i.i.Target, i.platform)
	return ImageStatus{Available: avail, Required: req, Present: present, Missing: missing}, err
}
