package client

import (
	"context"
	"io"

	"github.com/berth-containers/berth/images/archive"
	"github.com/berth-containers/berth/pkg/platforms"
)

type exportOpts struct {
	archiveOpts []archive.Opt
}

// ExportOpt configures Export.
type ExportOpt func(*exportOpts) error

// WithExportPlatform exports the content of platform m (default: this
// host's).
func WithExportPlatform(m platforms.MatchComparer) ExportOpt {
	return func(o *exportOpts) error { o.archiveOpts = append(o.archiveOpts, archive.WithPlatform(m)); return nil }
}

// WithExportAllPlatforms exports every platform's content; all of it must
// be present.
func WithExportAllPlatforms() ExportOpt {
	return func(o *exportOpts) error {
		o.archiveOpts = append(o.archiveOpts, archive.WithAllPlatforms())
		return nil
	}
}

// WithoutDockerManifest leaves out the manifest.json `docker load` reads.
func WithoutDockerManifest() ExportOpt {
	return func(o *exportOpts) error {
		o.archiveOpts = append(o.archiveOpts, archive.WithoutDockerManifest())
		return nil
	}
}

// WithExportSkipNonDistributable leaves out non-distributable layers
// even when the content store has them.
func WithExportSkipNonDistributable() ExportOpt {
	return func(o *exportOpts) error {
		o.archiveOpts = append(o.archiveOpts, archive.WithSkipNonDistributable())
		return nil
	}
}

// Export writes the named images as an OCI archive (with a docker
// manifest.json) to w, reading blobs through the content service.
func (c *Client) Export(ctx context.Context, w io.Writer, names []string, opts ...ExportOpt) error {
	var o exportOpts
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return err
		}
	}
	ctx = c.withNamespace(ctx)
	is := c.ImageService()
	var imgs []archive.ExportImage
	for _, name := range names {
		img, err := is.Get(ctx, name)
		if err != nil {
			return err
		}
		imgs = append(imgs, archive.ExportImage{Name: img.Name, Target: img.Target})
	}
	return archive.Export(ctx, c.ContentStore(), w, imgs, o.archiveOpts...)
}
