package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/pkg/reference"
	"github.com/berth-containers/berth/pkg/version"
	"github.com/berth-containers/berth/remotes"
	"github.com/berth-containers/berth/remotes/docker"
)

// RemoteContext is what Pull, Fetch and Push are configured with.
type RemoteContext struct {
	// Resolver talks to registries; when nil one is made from PlainHTTP,
	// HostDir and Credentials.
	Resolver  remotes.Resolver
	PlainHTTP bool
	// HostDir is a certs.d-style hosts directory (see remotes/docker).
	HostDir     string
	Credentials docker.CredentialsFunc

	// Platform chooses manifests from indexes; this host's by default.
	Platform      platforms.MatchComparer
	platformNames string
	platformSet   bool
	// ManifestLimit is how many of an index's matching manifests are
	// fetched, best first (0: all). 1 unless several platforms are asked for.
	ManifestLimit int
	// AllPlatforms fetches (or pushes) every platform.
	AllPlatforms bool
	// AllMetadata (Pull, Fetch) also fetches the manifests and configs of
	// the platforms not selected, without their layers; MetadataOnly
	// fetches manifests and configs only, no layer of any platform.
	AllMetadata, MetadataOnly bool

	// NonDistributable (Push only) pushes non-distributable ("foreign")
	// layers too; they are skipped by default, as registries are not
	// meant to hold them.
	NonDistributable bool

	// Unpack (Pull only) unpacks the image into Snapshotter ("" for the
	// namespace's default).
	Unpack      bool
	Snapshotter string

	// MaxConcurrentDownloads bounds the blobs fetched at once (default 3);
	// MaxConcurrentUploads the blobs pushed at once (default 3).
	MaxConcurrentDownloads int
	MaxConcurrentUploads   int

	// Labels are set on the image record a pull creates.
	Labels map[string]string
	// Progress receives the progress of every blob.
	Progress remotes.ProgressFunc

	// onRoot and onBlob, if set, hear of the resolved root descriptor and
	// of each blob once it is in the content store (see pullUnpacking).
	onRoot func(ocispec.Descriptor)
	onBlob func(digest.Digest)
}

// RemoteOpt configures Pull, Fetch and Push.
type RemoteOpt func(*RemoteContext) error

// WithResolver uses r to reach registries.
func WithResolver(r remotes.Resolver) RemoteOpt {
	return func(rc *RemoteContext) error { rc.Resolver = r; return nil }
}

// WithPlainHTTP talks HTTP, not HTTPS, to the registry (localhost always
// gets plain HTTP).
func WithPlainHTTP() RemoteOpt {
	return func(rc *RemoteContext) error { rc.PlainHTTP = true; return nil }
}

// WithHostDir configures registry hosts (mirrors, CAs, skip_verify) from
// dir/<registry>/hosts.toml.
func WithHostDir(dir string) RemoteOpt {
	return func(rc *RemoteContext) error { rc.HostDir = dir; return nil }
}

// WithCredentials answers registries that ask for credentials.
func WithCredentials(fn docker.CredentialsFunc) RemoteOpt {
	return func(rc *RemoteContext) error { rc.Credentials = fn; return nil }
}

// WithPlatformMatcher chooses manifests with m, fetching the best match
// only.
func WithPlatformMatcher(m platforms.MatchComparer) RemoteOpt {
	return func(rc *RemoteContext) error {
		rc.Platform, rc.ManifestLimit, rc.platformNames, rc.platformSet = m, 1, "requested", true
		return nil
	}
}

// WithPlatforms fetches the manifests of each platform given ("linux/arm64").
func WithPlatforms(specs ...string) RemoteOpt {
	return func(rc *RemoteContext) error {
		if len(specs) == 0 {
			return nil
		}
		ps, err := platforms.ParseAll(specs)
		if err != nil {
			return err
		}
		var names []string
		for _, p := range ps {
			names = append(names, platforms.Format(p))
		}
		rc.platformNames, rc.platformSet = strings.Join(names, ", "), true
		if len(ps) == 1 {
			rc.Platform, rc.ManifestLimit = platforms.Only(ps[0]), 1
			return nil
		}
		rc.Platform, rc.ManifestLimit = platforms.Ordered(ps...), 0
		return nil
	}
}

// WithAllPlatforms fetches or pushes the content of every platform.
func WithAllPlatforms() RemoteOpt {
	return func(rc *RemoteContext) error { rc.AllPlatforms = true; return nil }
}

// WithAllMetadata fetches the manifests and configs of every platform,
// and the layers of the selected ones (containerd's --all-metadata).
func WithAllMetadata() RemoteOpt {
	return func(rc *RemoteContext) error { rc.AllMetadata = true; return nil }
}

// WithMetadataOnly fetches every manifest and config, and no layers
// (containerd's content fetch --metadata-only).
func WithMetadataOnly() RemoteOpt {
	return func(rc *RemoteContext) error { rc.AllMetadata, rc.MetadataOnly = true, true; return nil }
}

// WithNonDistributable pushes non-distributable layers as well.
func WithNonDistributable() RemoteOpt {
	return func(rc *RemoteContext) error { rc.NonDistributable = true; return nil }
}

// WithPullUnpack unpacks the pulled image.
func WithPullUnpack() RemoteOpt {
	return func(rc *RemoteContext) error { rc.Unpack = true; return nil }
}

// WithPullSnapshotter unpacks into the named snapshotter.
func WithPullSnapshotter(name string) RemoteOpt {
	return func(rc *RemoteContext) error { rc.Snapshotter = name; return nil }
}

// WithMaxConcurrentDownloads bounds the blobs fetched at once.
func WithMaxConcurrentDownloads(n int) RemoteOpt {
	return func(rc *RemoteContext) error {
		if n < 1 {
			return fmt.Errorf("max concurrent downloads %d: must be at least 1: %w", n, errdefs.ErrInvalidArgument)
		}
		rc.MaxConcurrentDownloads = n
		return nil
	}
}

// WithMaxConcurrentUploads bounds the blobs pushed at once.
func WithMaxConcurrentUploads(n int) RemoteOpt {
	return func(rc *RemoteContext) error {
		if n < 1 {
			return fmt.Errorf("max concurrent uploads %d: must be at least 1: %w", n, errdefs.ErrInvalidArgument)
		}
		rc.MaxConcurrentUploads = n
		return nil
	}
}

// WithPullLabels sets labels on the image record.
func WithPullLabels(labels map[string]string) RemoteOpt {
	return func(rc *RemoteContext) error { rc.Labels = labels; return nil }
}

// WithProgress reports the progress of each blob to fn.
func WithProgress(fn remotes.ProgressFunc) RemoteOpt {
	return func(rc *RemoteContext) error { rc.Progress = fn; return nil }
}

func newRemoteContext(opts []RemoteOpt) (*RemoteContext, error) {
	rc := &RemoteContext{MaxConcurrentDownloads: 3, MaxConcurrentUploads: 3, ManifestLimit: 1}
	for _, o := range opts {
		if err := o(rc); err != nil {
			return nil, err
		}
	}
	if rc.Platform == nil {
		rc.Platform, rc.platformNames = platforms.DefaultMatcher(), platforms.DefaultString()
	}
	if rc.AllPlatforms {
		rc.ManifestLimit = 0
	}
	if rc.Resolver == nil {
		rc.Resolver = NewResolver(rc.PlainHTTP, rc.HostDir, rc.Credentials)
	}
	return rc, nil
}

// NewResolver is the registry resolver Pull and Push use by default.
func NewResolver(plainHTTP bool, hostDir string, creds docker.CredentialsFunc) remotes.Resolver {
	return docker.NewResolver(docker.Options{
		Hosts:       docker.ConfigureHosts(docker.HostOptions{PlainHTTP: plainHTTP, HostDir: hostDir}),
		Credentials: creds,
		Header:      http.Header{"User-Agent": {"berth/" + version.Version}},
	})
}

// Pull fetches the image ref names (see Fetch) and, with WithPullUnpack,
// unpacks it.
func (c *Client) Pull(ctx context.Context, ref string, opts ...RemoteOpt) (*Image, error) {
	rc, err := newRemoteContext(opts)
	if err != nil {
		return nil, err
	}
	ctx = c.withNamespace(ctx)
	ctx, done, err := c.WithLease(ctx)
	if err != nil {
		return nil, err
	}
	defer done(context.WithoutCancel(ctx))
	if !rc.Unpack {
		info, err := c.fetch(ctx, ref, rc)
		if err != nil {
			return nil, err
		}
		return NewImageWithPlatform(c, info, rc.Platform), nil
	}
	info, err := c.pullUnpacking(ctx, ref, rc)
	if info.Name == "" {
		return nil, err
	}
	return NewImageWithPlatform(c, info, rc.Platform), err
}

// Fetch downloads the image ref names into the content store and
// creates (or points) its image record: the index, the manifest(s) for
// the platform (every platform with WithAllPlatforms), their configs and
// layers, at most MaxConcurrentDownloads at a time. Each blob goes through
// a content ingest named by remotes.RefKey, so a pull interrupted and run
// again continues where it stopped. Blobs are labelled with where they
// came from (so a push elsewhere on that registry can mount them) and
// indexes and manifests with GC references to their children. The record
// is written only once everything it needs is there.
func (c *Client) Fetch(ctx context.Context, ref string, opts ...RemoteOpt) (ImageInfo, error) {
	rc, err := newRemoteContext(opts)
	if err != nil {
		return ImageInfo{}, err
	}
	ctx = c.withNamespace(ctx)
	ctx, done, err := c.WithLease(ctx)
	if err != nil {
		return ImageInfo{}, err
	}
	defer done(context.WithoutCancel(ctx))
	return c.fetch(ctx, ref, rc)
}

func (c *Client) fetch(ctx context.Context, ref string, rc *RemoteContext) (ImageInfo, error) {
	named, err := reference.ParseNormalized(ref)
	if err != nil {
		return ImageInfo{}, err
	}
	name := named.String()
	rc.Progress.Report(remotes.Progress{Ref: name, Status: remotes.StatusResolving})
	_, root, err := rc.Resolver.Resolve(ctx, name)
	if err != nil {
		rc.Progress.Report(remotes.Progress{Ref: name, Status: remotes.StatusError, Err: err})
		return ImageInfo{}, err
	}
	rc.Progress.Report(remotes.Progress{Ref: name, Desc: root, Status: remotes.StatusResolved, Offset: root.Size, Total: root.Size})
	log.G(ctx).WithField("image", name).WithField("digest", root.Digest).Debug("resolved")
	if rc.onRoot != nil {
		rc.onRoot(root)
	}

	fetcher, err := rc.Resolver.Fetcher(ctx, name)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("pull %s: %w", name, err)
	}
	store := c.ContentStore()
	var (
		seen sync.Map
		plat platforms.MatchComparer
		// metaOnly holds the manifests whose layers are not wanted
		// (AllMetadata: the platforms not selected).
		metaOnly sync.Map
	)
	if !rc.AllPlatforms {
		plat = rc.Platform
	}
	handler := images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if _, dup := seen.LoadOrStore(desc.Digest, true); dup {
			return nil, images.ErrSkipDesc
		}
		if images.IsNonDistributable(desc.MediaType) {
			log.G(ctx).WithField("digest", desc.Digest).Debug("skipping non-distributable layer")
			return nil, nil
		}
		if err := remotes.FetchBlob(ctx, store, fetcher, desc,
			remotes.WithSource(named.Domain(), named.Path()),
			remotes.WithFetchProgress(rc.Progress)); err != nil {
			return nil, err
		}
		if rc.onBlob != nil {
			rc.onBlob(desc.Digest)
		}
		if !images.IsManifestType(desc.MediaType) && !images.IsIndexType(desc.MediaType) {
			return nil, nil
		}
		children, err := images.Children(ctx, store, desc)
		if err != nil {
			return nil, err
		}
		// Every child is referenced, fetched or not, so content pulled
		// later for another platform is kept too.
		if err := images.SetGCLabels(ctx, store, desc, children); err != nil {
			return nil, err
		}
		switch {
		case images.IsIndexType(desc.MediaType) && rc.AllMetadata:
			wanted := map[digest.Digest]bool{}
			if !rc.MetadataOnly {
				for _, ch := range selectManifests(children, plat, rc.ManifestLimit) {
					wanted[ch.Digest] = true
				}
			}
			for _, ch := range children {
				if images.IsManifestType(ch.MediaType) && !wanted[ch.Digest] {
					metaOnly.Store(ch.Digest, true)
				}
			}
		case images.IsIndexType(desc.MediaType):
			children = selectManifests(children, plat, rc.ManifestLimit)
			if len(children) == 0 {
				return nil, fmt.Errorf("%s has no manifest for platform %s: %w", images.Describe(desc), rc.platformNames, errdefs.ErrNotFound)
			}
		case images.IsManifestType(desc.MediaType):
			if _, ok := metaOnly.Load(desc.Digest); ok || rc.MetadataOnly {
				children = configsOf(children)
			}
		}
		for _, ch := range children {
			rc.Progress.Report(remotes.Progress{Ref: remotes.RefKey(ch), Desc: ch, Status: remotes.StatusWaiting, Total: ch.Size})
		}
		return children, nil
	})
	if err := images.Dispatch(ctx, handler, rc.MaxConcurrentDownloads, root); err != nil {
		return ImageInfo{}, fmt.Errorf("pull %s: %w", name, err)
	}

	// What the platform needs must all be here; with MetadataOnly no
	// layer is meant to be.
	if !rc.AllPlatforms && !rc.MetadataOnly {
		_, _, _, missing, err := images.Check(ctx, store, root, rc.Platform)
		if err != nil {
			return ImageInfo{}, fmt.Errorf("pull %s: %w", name, err)
		}
		var unfetched []string
		for _, m := range missing {
			if !images.IsNonDistributable(m.MediaType) {
				unfetched = append(unfetched, images.Describe(m))
			}
		}
		if len(unfetched) > 0 {
			return ImageInfo{}, fmt.Errorf("pull %s: content missing after fetch: %s: %w", name, strings.Join(unfetched, ", "), errdefs.ErrFailedPrecondition)
		}
	}

	info, err := c.putImage(ctx, ImageInfo{Name: name, Target: root, Labels: rc.Labels})
	if err != nil {
		return ImageInfo{}, fmt.Errorf("pull %s: %w", name, err)
	}
	return info, nil
}

// selectManifests keeps the children of an index to fetch: those whose
// platform m matches (all when m is nil), best first, at most limit
// manifests (0: all). Attestations (unknown/unknown) match no platform.
// configsOf is a manifest's config alone, its layers left out: the
// children of a manifest (images.Children) are its config, then its
// layers.
func configsOf(children []ocispec.Descriptor) []ocispec.Descriptor {
	if len(children) == 0 {
		return nil
	}
	return children[:1]
}

func selectManifests(children []ocispec.Descriptor, m platforms.MatchComparer, limit int) []ocispec.Descriptor {
	if m == nil {
		return children
	}
	var out []ocispec.Descriptor
	for _, ch := range children {
		if ch.Platform == nil || m.Match(*ch.Platform) {
			out = append(out, ch)
		}
	}
	if limit <= 0 || len(out) <= limit {
		return out
	}
	// Best first: an entry with a platform beats one without.
	sort.SliceStable(out, func(i, j int) bool { return lessPlatform(m, out[i], out[j]) })
	return out[:limit]
}

func lessPlatform(m platforms.MatchComparer, a, b ocispec.Descriptor) bool {
	switch {
	case a.Platform == nil:
		return false
	case b.Platform == nil:
		return true
	}
	return m.Less(*a.Platform, *b.Platform)
}

// putImage creates the record, or points an existing one at the new
// target (and labels).
func (c *Client) putImage(ctx context.Context, img ImageInfo) (ImageInfo, error) {
	is := c.ImageService()
	fields := []string{"target"}
	for k := range img.Labels {
		fields = append(fields, "labels."+k)
	}
	out, err := is.Update(ctx, img, fields...)
	if errdefs.IsNotFound(err) {
		out, err = is.Create(ctx, img)
		if errdefs.IsAlreadyExists(err) {
			out, err = is.Update(ctx, img, fields...)
		}
	}
	if err != nil {
		return ImageInfo{}, fmt.Errorf("image %q: %w", img.Name, err)
	}
	return out, nil
}

// IsImageNotFound reports whether err says an image (record or registry
// tag) does not exist.
func IsImageNotFound(err error) bool { return errdefs.IsNotFound(err) }

// IsUnauthorized reports whether a registry refused err's request for
// want of (valid) credentials.
func IsUnauthorized(err error) bool {
	return errors.Is(err, remotes.ErrUnauthorized) || errors.Is(err, remotes.ErrDenied)
}
