package client

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/leases"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/reference"
	"github.com/berth-containers/berth/remotes"
)

// Push uploads the image whose root is desc (an index or a manifest, as
// found in a local image record) to the repository ref names and tags it
// with ref's tag. Blobs go first, at most MaxConcurrentUploads at a time,
// skipping what the registry has and mounting what another repository of
// the same registry has (known from the blobs' distribution-source
// labels); then manifests, children before the indexes that list them;
// the root last. Every platform is pushed unless a platform option says
// otherwise; a manifest of the image missing from the content store is
// an error naming it.
func (c *Client) Push(ctx context.Context, ref string, desc ocispec.Descriptor, opts ...RemoteOpt) error {
	rc, err := newRemoteContext(opts)
	if err != nil {
		return err
	}
	// Push sends all platforms unless asked otherwise.
	if !rc.platformSet {
		rc.AllPlatforms = true
	}
	named, err := reference.ParseNormalized(ref)
	if err != nil {
		return err
	}
	name := named.String()
	if err := images.ValidateDescriptor(desc); err != nil {
		return fmt.Errorf("push %s: %w", name, err)
	}
	ctx = c.withNamespace(ctx)
	_, inLease := leases.FromContext(ctx)
	ctx, done, err := c.WithLease(ctx)
	if err != nil {
		return err
	}
	defer done(context.WithoutCancel(ctx))
	if !inLease {
		// The root may be referenced by nothing (push --manifest of a blob
		// just ingested): the push's own lease keeps the garbage
		// collector off it until the push is done.
		id, _ := leases.FromContext(ctx)
		if err := c.Leases().AddResource(ctx, id, LeaseResource{ID: desc.Digest.String(), Type: "content"}); err != nil {
			return fmt.Errorf("push %s: lease %s: %w", name, desc.Digest, err)
		}
	}

	store := c.ContentStore()
	order, err := pushOrder(ctx, store, desc, rc)
	if err != nil {
		return fmt.Errorf("push %s: %w", name, err)
	}
	pusher, err := rc.Resolver.Pusher(ctx, name)
	if err != nil {
		return fmt.Errorf("push %s: %w", name, err)
	}
	push := func(ctx context.Context, d ocispec.Descriptor, tag bool) error {
		return pushOne(ctx, store, pusher, d, tag, rc.Progress)
	}

	var blobs, manifests []ocispec.Descriptor
	for _, d := range order {
		if d.Digest == desc.Digest {
			continue
		}
		if images.IsManifestType(d.MediaType) || images.IsIndexType(d.MediaType) {
			manifests = append(manifests, d)
		} else {
			blobs = append(blobs, d)
		}
		rc.Progress.Report(remotes.Progress{Ref: remotes.RefKey(d), Desc: d, Status: remotes.StatusWaiting, Total: d.Size})
	}
	if err := pushConcurrently(ctx, blobs, rc.MaxConcurrentUploads, func(ctx context.Context, d ocispec.Descriptor) error {
		return push(ctx, d, false)
	}); err != nil {
		return fmt.Errorf("push %s: %w", name, err)
	}
	for _, d := range manifests {
		if err := push(ctx, d, false); err != nil {
			return fmt.Errorf("push %s: %w", name, err)
		}
	}
	if err := push(ctx, desc, named.Tag() != ""); err != nil {
		return fmt.Errorf("push %s: %w", name, err)
	}
	return nil
}

// pushOrder lists what to push below root, children before parents,
// each once: every child of an index for every platform, or the
// platform's.
func pushOrder(ctx context.Context, store content.Store, root ocispec.Descriptor, rc *RemoteContext) ([]ocispec.Descriptor, error) {
	var (
		order []ocispec.Descriptor
		seen  = map[digest.Digest]bool{}
	)
	var visit func(d ocispec.Descriptor, depth int) error
	visit = func(d ocispec.Descriptor, depth int) error {
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		if depth > 8 {
			return fmt.Errorf("%s: nested too deep: %w", images.Describe(d), errdefs.ErrInvalidArgument)
		}
		if images.IsManifestType(d.MediaType) || images.IsIndexType(d.MediaType) {
			children, err := images.Children(ctx, store, d)
			if err != nil {
				if errdefs.IsNotFound(err) {
					return fmt.Errorf("%s is not in the content store (pull it with --all-platforms first, or push one --platform): %w", describeWithPlatform(d), err)
				}
				return err
			}
			if images.IsIndexType(d.MediaType) && !rc.AllPlatforms {
				children = selectManifests(children, rc.Platform, 0)
			}
			for _, ch := range children {
				if images.IsNonDistributable(ch.MediaType) && !rc.NonDistributable {
					continue
				}
				if err := visit(ch, depth+1); err != nil {
					return err
				}
			}
		}
		order = append(order, d)
		return nil
	}
	if err := visit(root, 0); err != nil {
		return nil, err
	}
	return order, nil
}

func describeWithPlatform(d ocispec.Descriptor) string {
	s := images.Describe(d)
	if d.Platform != nil {
		p := d.Platform.OS + "/" + d.Platform.Architecture
		if d.Platform.Variant != "" {
			p += "/" + d.Platform.Variant
		}
		s += " (" + p + ")"
	}
	return s
}

// pushOne pushes d (tagging it when tag), reporting progress.
func pushOne(ctx context.Context, store content.Store, pusher remotes.Pusher, d ocispec.Descriptor, tag bool, progress remotes.ProgressFunc) error {
	ref := remotes.RefKey(d)
	start := time.Now()
	report := func(st remotes.Status, off int64, err error) {
		progress.Report(remotes.Progress{Ref: ref, Desc: d, Status: st, Offset: off, Total: d.Size, StartedAt: start, Err: err})
	}
	ra, err := store.ReaderAt(ctx, d)
	if err != nil {
		err = fmt.Errorf("%s: %w", images.Describe(d), err)
		report(remotes.StatusError, 0, err)
		return err
	}
	defer ra.Close()
	// Sources on this blob's labels let the pusher mount it.
	if info, err := store.Info(ctx, d.Digest); err == nil {
		for k, v := range info.Labels {
			if strings.HasPrefix(k, remotes.LabelDistributionSource) {
				if d.Annotations == nil {
					d.Annotations = map[string]string{}
				} else {
					a := make(map[string]string, len(d.Annotations))
					for k, v := range d.Annotations {
						a[k] = v
					}
					d.Annotations = a
				}
				d.Annotations[k] = v
			}
		}
	}
	cr := &countingReaderAt{ra: ra, report: func(n int64) { report(remotes.StatusUploading, n, nil) }}
	report(remotes.StatusUploading, 0, nil)
	if tag {
		err = pusher.Tag(ctx, d, cr)
	} else {
		err = pusher.Push(ctx, d, cr)
	}
	switch {
	case errdefs.IsAlreadyExists(err):
		log.G(ctx).WithField("digest", d.Digest).Debug("registry has it")
		report(remotes.StatusExists, d.Size, nil)
		return nil
	case err != nil:
		report(remotes.StatusError, cr.max.Load(), err)
		return err
	}
	report(remotes.StatusDone, d.Size, nil)
	return nil
}

// countingReaderAt reports the furthest byte read.
type countingReaderAt struct {
	ra     io.ReaderAt
	max    atomic.Int64
	report func(int64)
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.ra.ReadAt(p, off)
	if end := off + int64(n); end > c.max.Load() {
		c.max.Store(end)
		c.report(end)
	}
	return n, err
}

// pushConcurrently runs fn on each desc, at most limit at once; the first
// error cancels the rest.
func pushConcurrently(ctx context.Context, descs []ocispec.Descriptor, limit int, fn func(context.Context, ocispec.Descriptor) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if limit < 1 {
		limit = 1
	}
	sem := make(chan struct{}, limit)
	var (
		wg   sync.WaitGroup
		once sync.Once
		ferr error
	)
	for _, d := range descs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(d ocispec.Descriptor) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, d); err != nil {
				once.Do(func() { ferr = err; cancel(err) })
			}
		}(d)
	}
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	return ctx.Err()
}
