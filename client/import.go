package client

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-containers/berth/images/archive"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
)

type importOpts struct {
	archiveOpts []archive.Opt
	platform    platforms.MatchComparer
	noUnpack    bool
	snapshotter string
	progress    func(img ImageInfo, done bool, err error)
}

// ImportOpt configures Import.
type ImportOpt func(*importOpts) error

// WithImportBaseName names tag-only OCI entries (and digest names) under
// this repository; see archive.WithBaseName.
func WithImportBaseName(name string) ImportOpt {
	return func(o *importOpts) error {
		o.archiveOpts = append(o.archiveOpts, archive.WithBaseName(name))
		return nil
	}
}

// WithImportDigests also names each image "<base>@<digest>".
func WithImportDigests() ImportOpt {
	return func(o *importOpts) error { o.archiveOpts = append(o.archiveOpts, archive.WithDigests()); return nil }
}

// WithImportSkipDigestForNamed gives digest names (WithImportDigests)
// only to the images the archive does not name.
func WithImportSkipDigestForNamed() ImportOpt {
	return func(o *importOpts) error {
		o.archiveOpts = append(o.archiveOpts, archive.WithSkipDigestForNamed())
		return nil
	}
}

// WithImportCompressBlobs gzips a docker archive's uncompressed layers
// (see archive.WithCompressBlobs).
func WithImportCompressBlobs() ImportOpt {
	return func(o *importOpts) error {
		o.archiveOpts = append(o.archiveOpts, archive.WithCompressBlobs())
		return nil
	}
}

// WithImportIndexName keeps the archive's whole index as an image of name.
func WithImportIndexName(name string) ImportOpt {
	return func(o *importOpts) error {
		o.archiveOpts = append(o.archiveOpts, archive.WithIndexName(name))
		return nil
	}
}

// WithImportAllPlatforms imports every platform's content (unpacking is
// still for this host's platform).
func WithImportAllPlatforms() ImportOpt {
	return func(o *importOpts) error {
		o.archiveOpts = append(o.archiveOpts, archive.WithAllPlatforms())
		return nil
	}
}

// WithImportPlatform imports, and unpacks, the content of platform m.
func WithImportPlatform(m platforms.MatchComparer) ImportOpt {
	return func(o *importOpts) error {
		o.platform = m
		o.archiveOpts = append(o.archiveOpts, archive.WithPlatform(m))
		return nil
	}
}

// WithoutUnpack only stores content and records; nothing is unpacked.
func WithoutUnpack() ImportOpt {
	return func(o *importOpts) error { o.noUnpack = true; return nil }
}

// WithImportSnapshotter unpacks into the named snapshotter instead of the
// namespace's default.
func WithImportSnapshotter(name string) ImportOpt {
	return func(o *importOpts) error { o.snapshotter = name; return nil }
}

// WithUnpackProgress calls fn before (done false) and after (done true,
// with the result) unpacking each image.
func WithUnpackProgress(fn func(img ImageInfo, done bool, err error)) ImportOpt {
	return func(o *importOpts) error { o.progress = fn; return nil }
}

// Import reads an OCI or docker image archive from r into the daemon's
// content store, creates or updates (target only, labels kept) a record
// for each image it names and, unless WithoutUnpack, unpacks them. All of
// it runs under one lease, so nothing is collected before the records
// hold it.
func (c *Client) Import(ctx context.Context, r io.Reader, opts ...ImportOpt) ([]ImageInfo, error) {
	var o importOpts
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	ctx = c.withNamespace(ctx)
	ctx, done, err := c.WithLease(ctx)
	if err != nil {
		return nil, err
	}
	defer done(context.WithoutCancel(ctx))

	records, err := archive.Import(ctx, c.ContentStore(), r, o.archiveOpts...)
	if err != nil {
		return nil, err
	}
	is := c.ImageService()
	var imgs []ImageInfo
	for _, rec := range records {
		img := ImageInfo{Name: rec.Name, Target: rec.Target}
		updated, err := is.Update(ctx, img, "target")
		if errdefs.IsNotFound(err) {
			updated, err = is.Create(ctx, img)
			if errdefs.IsAlreadyExists(err) { // created meanwhile
				updated, err = is.Update(ctx, img, "target")
			}
		}
		if err != nil {
			return imgs, fmt.Errorf("image %q: %w", rec.Name, err)
		}
		imgs = append(imgs, updated)
	}
	if o.noUnpack {
		return imgs, nil
	}
	platform := o.platform
	if platform == nil {
		platform = platforms.DefaultMatcher()
	}
	return imgs, c.unpackAll(ctx, imgs, platform, o.snapshotter, o.progress)
}
