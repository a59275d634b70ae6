// Package docker speaks the OCI distribution protocol (Docker registry
// API v2): resolving tags, fetching and pushing blobs and manifests,
// following registries' Basic and Bearer authentication, retrying what a
// busy registry or a broken connection interrupts, and reaching mirrors
// and private CAs as a certs.d-style hosts directory says.
package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/reference"
	"github.com/berth-containers/berth/remotes"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// manifestAccept lists the manifest types we ask for, most preferred
// first. Schema 1 is not among them: we cannot use it.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	images.MediaTypeDockerSchema2ManifestList,
	images.MediaTypeDockerSchema2Manifest,
}, ", ")

// Options configures NewResolver.
type Options struct {
	// Hosts lists where a domain's content is; ConfigureHosts(HostOptions{})
	// when nil.
	Hosts HostsFunc
	// Credentials for hosts that ask; anonymous when nil.
	Credentials CredentialsFunc
	// Header is added to every request (User-Agent and the like).
	Header http.Header
	// Retry is the retry policy; DefaultRetryPolicy when zero.
	Retry RetryPolicy
}

// Resolver implements remotes.Resolver against registries. It is safe
// for concurrent use; tokens and recently resolved manifests are shared
// by everything made from it.
type Resolver struct {
	hosts  HostsFunc
	auth   *auth
	header http.Header
	retry  RetryPolicy

	mu sync.Mutex
	// manifests holds bodies read while resolving, so fetching the
	// manifest right after does not download it again.
	manifests map[digest.Digest][]byte
}

var _ remotes.Resolver = (*Resolver)(nil)

// NewResolver returns a resolver.
func NewResolver(opts Options) *Resolver {
	r := &Resolver{
		hosts:     opts.Hosts,
		auth:      newAuth(opts.Credentials),
		header:    opts.Header,
		retry:     opts.Retry,
		manifests: map[digest.Digest][]byte{},
	}
	if r.hosts == nil {
		r.hosts = ConfigureHosts(HostOptions{})
	}
	if r.retry.Attempts <= 0 {
		r.retry = DefaultRetryPolicy
	}
	if r.header == nil {
		r.header = http.Header{}
	}
	if r.header.Get("User-Agent") == "" {
		r.header = r.header.Clone()
		r.header.Set("User-Agent", "berth/1")
	}
	return r
}

// repo is a repository on a registry and the hosts serving it.
type repo struct {
	named reference.Named
	hosts []RegistryHost
}

func (r *Resolver) repository(ref string, capability HostCapabilities) (repo, error) {
	named, err := reference.ParseNormalized(ref)
	if err != nil {
		return repo{}, err
	}
	all, err := r.hosts(named.Domain())
	if err != nil {
		return repo{}, err
	}
	var hosts []RegistryHost
	for _, h := range all {
		if h.Capabilities.Has(capability) {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return repo{}, fmt.Errorf("%s: no host configured to %s it: %w", named.Name(), capability, errdefs.ErrNotFound)
	}
	return repo{named: named, hosts: hosts}, nil
}

// url is path below the repository on host h; a mirror is told which
// registry the repository belongs to with ?ns=.
func (rp repo) url(h RegistryHost, path string) string {
	u := h.url("/" + rp.named.Path() + path)
	if d := rp.named.Domain(); h.Host != d && !(d == "docker.io" && h.Host == DockerHubHost) {
		u += "?ns=" + url.QueryEscape(d)
	}
	return u
}

// Resolve implements remotes.Resolver: a HEAD, then a GET of the
// manifest by tag (or digest, if ref has one), on each resolve host in
// turn. The body's digest must match the ref's digest and the
// registry's Docker-Content-Digest header.
func (r *Resolver) Resolve(ctx context.Context, ref string) (string, ocispec.Descriptor, error) {
	rp, err := r.repository(ref, CapabilityResolve)
	if err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	var errs []error
	for _, h := range rp.hosts {
		desc, err := r.resolveOn(ctx, rp, h)
		if err == nil {
			return rp.named.String(), desc, nil
		}
		if ctx.Err() != nil {
			return "", ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", rp.named, ctx.Err())
		}
		log.G(ctx).WithError(err).WithField("host", h.Host).Debug("resolve failed on host")
		errs = append(errs, err)
	}
	return "", ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", rp.named, firstInteresting(errs))
}

// firstInteresting picks the error to report from several hosts: the
// first that is not NotFound, else the first.
func firstInteresting(errs []error) error {
	for _, err := range errs {
		if !errdefs.IsNotFound(err) {
			return err
		}
	}
	return errs[0]
}

func (r *Resolver) resolveOn(ctx context.Context, rp repo, h RegistryHost) (ocispec.Descriptor, error) {
	object := rp.named.Tag()
	if d := rp.named.Digest(); d != "" {
		object = d.String()
	}
	u := rp.url(h, "/manifests/"+object)
	scopes := []string{repoScope(rp.named.Path(), "pull")}
	hdr := http.Header{"Accept": {manifestAccept}}

	resp, err := r.do(ctx, &request{method: http.MethodHead, host: h, url: u, header: hdr, scopes: scopes})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		if d := digest.Digest(resp.Header.Get("Docker-Content-Digest")); d != "" {
			if p := r.cached(d); p != nil {
				return describeManifest(resp.Header.Get("Content-Type"), p)
			}
		}
	case http.StatusNotFound:
		return ocispec.Descriptor{}, fmt.Errorf("%w: %w", errdefs.ErrNotFound, newStatusError(resp))
	}
	// Anything else (a registry that does not HEAD, say): ask for the body.

	resp, err = r.do(ctx, &request{method: http.MethodGet, host: h, url: u, header: hdr, scopes: scopes})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %w", errdefs.ErrNotFound, newStatusError(resp))
	}
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, newStatusError(resp)
	}
	defer resp.Body.Close()
	p, err := io.ReadAll(io.LimitReader(resp.Body, images.MaxJSONSize+1))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("GET %s: read manifest: %w", redact(u), err)
	}
	if len(p) > images.MaxJSONSize {
		return ocispec.Descriptor{}, fmt.Errorf("GET %s: manifest larger than %d bytes: %w", redact(u), images.MaxJSONSize, errdefs.ErrInvalidArgument)
	}
	if want := rp.named.Digest(); want != "" {
		if err := verifyDigest(p, want); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("GET %s: %w", redact(u), err)
		}
	}
	if hd := resp.Header.Get("Docker-Content-Digest"); hd != "" {
		d, err := digest.Parse(hd)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("GET %s: invalid Docker-Content-Digest %q: %w", redact(u), hd, errdefs.ErrInvalidArgument)
		}
		if err := verifyDigest(p, d); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("GET %s: Docker-Content-Digest: %w", redact(u), err)
		}
	}
	desc, err := describeManifest(resp.Header.Get("Content-Type"), p)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("GET %s: %w", redact(u), err)
	}
	r.cache(desc.Digest, p)
	return desc, nil
}

// verifyDigest checks that p has digest want, naming both if not.
func verifyDigest(p []byte, want digest.Digest) error {
	if err := want.Validate(); err != nil {
		return fmt.Errorf("digest %q: %v: %w", want, err, errdefs.ErrInvalidArgument)
	}
	if got := want.Algorithm().FromBytes(p); got != want {
		return fmt.Errorf("content has digest %s, expected %s: %w", got, want, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// describeManifest makes the descriptor of manifest body p served as
// contentType. The media type is the body's own mediaType if it has one,
// else the Content-Type, else what the body's shape says.
func describeManifest(contentType string, p []byte) (ocispec.Descriptor, error) {
	var probe struct {
		MediaType     string          `json:"mediaType"`
		SchemaVersion int             `json:"schemaVersion"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(p, &probe); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest is not JSON: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	mt := probe.MediaType
	if mt == "" {
		if ct, _, err := mime.ParseMediaType(contentType); err == nil && (images.IsManifestType(ct) || images.IsIndexType(ct) || images.IsSchema1Type(ct)) {
			mt = ct
		}
	}
	if mt == "" {
		switch {
		case probe.Manifests != nil:
			mt = ocispec.MediaTypeImageIndex
		case probe.Config != nil:
			mt = ocispec.MediaTypeImageManifest
		case probe.FSLayers != nil || probe.SchemaVersion == 1:
			mt = images.MediaTypeDockerSchema1Manifest
		}
	}
	switch {
	case images.IsSchema1Type(mt):
		return ocispec.Descriptor{}, fmt.Errorf("manifest is Docker schema 1 (%s), which is not supported; push the image again with a current client: %w", mt, errdefs.ErrNotImplemented)
	case !images.IsManifestType(mt) && !images.IsIndexType(mt):
		return ocispec.Descriptor{}, fmt.Errorf("media type %q is not an image manifest or index: %w", mt, errdefs.ErrNotImplemented)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(p), Size: int64(len(p))}, nil
}

// manifestCacheSize bounds the manifests kept from resolving.
const manifestCacheSize = 32

func (r *Resolver) cache(d digest.Digest, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.manifests) >= manifestCacheSize {
		for k := range r.manifests {
			delete(r.manifests, k)
			break
		}
	}
	r.manifests[d] = p
}

func (r *Resolver) cached(d digest.Digest) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifests[d]
}

// Fetcher implements remotes.Resolver.
func (r *Resolver) Fetcher(ctx context.Context, ref string) (remotes.Fetcher, error) {
	rp, err := r.repository(ref, CapabilityPull)
	if err != nil {
		return nil, err
	}
	return &fetcher{r: r, rp: rp}, nil
}

// Pusher implements remotes.Resolver.
func (r *Resolver) Pusher(ctx context.Context, ref string) (remotes.Pusher, error) {
	rp, err := r.repository(ref, CapabilityPush)
	if err != nil {
		return nil, err
	}
	return &pusher{r: r, rp: rp, tag: rp.named.Tag()}, nil
}

// cachedReader serves a cached manifest.
func cachedReader(p []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(p)) }
