package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/remotes"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type pusher struct {
	r   *Resolver
	rp  repo
	tag string
}

var _ remotes.Pusher = (*pusher)(nil)

func isManifest(desc ocispec.Descriptor) bool {
	return images.IsManifestType(desc.MediaType) || images.IsIndexType(desc.MediaType)
}

// host is where pushes go: the first host allowed to push.
func (p *pusher) host() RegistryHost { return p.rp.hosts[0] }

func (p *pusher) scopes(extra ...string) []string {
	return append([]string{repoScope(p.rp.named.Path(), "pull", "push")}, extra...)
}

// Push implements remotes.Pusher.
func (p *pusher) Push(ctx context.Context, desc ocispec.Descriptor, ra io.ReaderAt) error {
	if err := images.ValidateDescriptor(desc); err != nil {
		return fmt.Errorf("push %s: %w", desc.Digest, err)
	}
	exists, err := p.exists(ctx, desc)
	if err != nil {
		return fmt.Errorf("push %s: %w", images.Describe(desc), err)
	}
	if exists {
		return fmt.Errorf("push %s: %s has it: %w", images.Describe(desc), p.rp.named.Name(), errdefs.ErrAlreadyExists)
	}
	if isManifest(desc) {
		return p.putManifest(ctx, desc, ra, desc.Digest.String())
	}
	return p.pushBlob(ctx, desc, ra)
}

// Tag implements remotes.Pusher.
func (p *pusher) Tag(ctx context.Context, desc ocispec.Descriptor, ra io.ReaderAt) error {
	if p.tag == "" {
		return fmt.Errorf("tag %s: reference %s has no tag: %w", images.Describe(desc), p.rp.named, errdefs.ErrInvalidArgument)
	}
	if !isManifest(desc) {
		return fmt.Errorf("tag %s: only manifests and indexes can be tagged: %w", images.Describe(desc), errdefs.ErrInvalidArgument)
	}
	return p.putManifest(ctx, desc, ra, p.tag)
}

// exists HEADs desc in the repository.
func (p *pusher) exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	kind := "/blobs/"
	hdr := http.Header{}
	if isManifest(desc) {
		kind = "/manifests/"
		hdr.Set("Accept", desc.MediaType+", "+manifestAccept)
	}
	h := p.host()
	resp, err := p.r.do(ctx, &request{method: http.MethodHead, host: h, url: p.rp.url(h, kind+desc.Digest.String()), header: hdr, scopes: p.scopes()})
	if err != nil {
		return false, err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	log.G(ctx).WithField("status", resp.Status).WithField("digest", desc.Digest).Debug("existence check inconclusive; pushing")
	return false, nil
}

// putManifest PUTs the manifest desc under ref (its digest or a tag).
func (p *pusher) putManifest(ctx context.Context, desc ocispec.Descriptor, ra io.ReaderAt, ref string) error {
	if desc.Size > images.MaxJSONSize {
		return fmt.Errorf("push %s: size %d exceeds %d: %w", images.Describe(desc), desc.Size, images.MaxJSONSize, errdefs.ErrInvalidArgument)
	}
	b := make([]byte, desc.Size)
	if _, err := io.ReadFull(io.NewSectionReader(ra, 0, desc.Size), b); err != nil {
		return fmt.Errorf("push %s: read: %w", images.Describe(desc), err)
	}
	if err := verifyDigest(b, desc.Digest); err != nil {
		return fmt.Errorf("push %s: %w", images.Describe(desc), err)
	}
	h := p.host()
	u := p.rp.url(h, "/manifests/"+ref)
	resp, err := p.r.do(ctx, &request{method: http.MethodPut, host: h, url: u,
		header: http.Header{"Content-Type": {desc.MediaType}},
		body:   func() (io.Reader, error) { return bytes.NewReader(b), nil }, size: int64(len(b)),
		scopes: p.scopes()})
	if err != nil {
		return fmt.Errorf("push %s: %w", images.Describe(desc), err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("push %s: %w", images.Describe(desc), newStatusError(resp))
	}
	drain(resp)
	if hd := resp.Header.Get("Docker-Content-Digest"); hd != "" && digest.Digest(hd) != desc.Digest {
		return fmt.Errorf("push %s: registry stored it as %s: %w", images.Describe(desc), hd, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// pushBlob uploads a blob: mounted from another repository of the same
// registry if we know one that has it, else POST for an upload URL, PATCH
// the bytes, PUT to finish. A failed upload starts over, as the retry
// policy allows.
func (p *pusher) pushBlob(ctx context.Context, desc ocispec.Descriptor, ra io.ReaderAt) error {
	var err error
	for attempt := 1; ; attempt++ {
		var mounted bool
		mounted, err = p.uploadBlob(ctx, desc, ra, attempt == 1)
		if err == nil {
			if mounted {
				return fmt.Errorf("push %s: mounted: %w", images.Describe(desc), errdefs.ErrAlreadyExists)
			}
			return nil
		}
		if ctx.Err() != nil || !retryable(err) || attempt >= p.r.retry.Attempts {
			break
		}
		d := p.r.retry.backoff(attempt, "")
		log.G(ctx).WithError(err).WithField("digest", desc.Digest).Debugf("upload failed; starting over in %v", d)
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	return fmt.Errorf("push %s: %w", images.Describe(desc), err)
}

// mountSource is a repository on this registry that has desc, by its
// distribution-source annotation.
func (p *pusher) mountSource(desc ocispec.Descriptor) string {
	for _, r := range remotes.SourceRepos(desc.Annotations[remotes.LabelDistributionSource+p.rp.named.Domain()]) {
		if r != p.rp.named.Path() {
			return r
		}
	}
	return ""
}

func (p *pusher) uploadBlob(ctx context.Context, desc ocispec.Descriptor, ra io.ReaderAt, tryMount bool) (mounted bool, err error) {
	h := p.host()
	start := p.rp.url(h, "/blobs/uploads/")
	scopes := p.scopes()
	var location string
	if from := p.mountSource(desc); from != "" && tryMount {
		q := url.Values{"mount": {desc.Digest.String()}, "from": {from}}
		mu := addQuery(start, q)
		resp, err := p.r.do(ctx, &request{method: http.MethodPost, host: h, url: mu, size: 0,
			body:   func() (io.Reader, error) { return http.NoBody, nil },
			scopes: append(scopes, repoScope(from, "pull"))})
		switch {
		case err != nil:
			log.G(ctx).WithError(err).WithField("from", from).Debug("cross-repository mount failed; uploading")
		case resp.StatusCode == http.StatusCreated:
			drain(resp)
			log.G(ctx).WithField("digest", desc.Digest).WithField("from", from).Debug("blob mounted")
			return true, nil
		case resp.StatusCode == http.StatusAccepted:
			// No mount, but an upload session to use.
			location, err = locationOf(resp)
			drain(resp)
			if err != nil {
				return false, err
			}
		default:
			drain(resp)
		}
	}
	if location == "" {
		resp, err := p.r.do(ctx, &request{method: http.MethodPost, host: h, url: start, size: 0,
			body: func() (io.Reader, error) { return http.NoBody, nil }, scopes: scopes})
		if err != nil {
			return false, err
		}
		if resp.StatusCode != http.StatusAccepted {
			return false, newStatusError(resp)
		}
		location, err = locationOf(resp)
		drain(resp)
		if err != nil {
			return false, err
		}
	}

	resp, err := p.r.do(ctx, &request{method: http.MethodPatch, host: h, url: location,
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body:   func() (io.Reader, error) { return io.NewSectionReader(ra, 0, desc.Size), nil }, size: desc.Size,
		scopes: scopes, once: true})
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusCreated {
		return false, newStatusError(resp)
	}
	if l := resp.Header.Get("Location"); l != "" {
		location, err = locationOf(resp)
		if err != nil {
			drain(resp)
			return false, err
		}
	}
	drain(resp)

	put := addQuery(location, url.Values{"digest": {desc.Digest.String()}})
	resp, err = p.r.do(ctx, &request{method: http.MethodPut, host: h, url: put, size: 0,
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body:   func() (io.Reader, error) { return http.NoBody, nil }, scopes: scopes, once: true})
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusAccepted {
		return false, newStatusError(resp)
	}
	drain(resp)
	if hd := resp.Header.Get("Docker-Content-Digest"); hd != "" && digest.Digest(hd) != desc.Digest {
		return false, fmt.Errorf("registry stored it as %s: %w", hd, errdefs.ErrFailedPrecondition)
	}
	return false, nil
}

// locationOf is resp's Location made absolute.
func locationOf(resp *http.Response) (string, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return "", fmt.Errorf("%s %s: %s without a Location: %w", resp.Request.Method, redactURL(resp.Request.URL), resp.Status, errdefs.ErrInvalidArgument)
	}
	u, err := resp.Request.URL.Parse(l)
	if err != nil {
		return "", fmt.Errorf("%s %s: bad Location %q: %w", resp.Request.Method, redactURL(resp.Request.URL), redact(l), errdefs.ErrInvalidArgument)
	}
	return u.String(), nil
}

func addQuery(s string, q url.Values) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	v := u.Query()
	for k, vals := range q {
		v[k] = vals
	}
	u.RawQuery = v.Encode()
	return u.String()
}
