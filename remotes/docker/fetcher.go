package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/remotes"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxResumes bounds how often one read continues a broken download.
const maxResumes = 5

type fetcher struct {
	r  *Resolver
	rp repo
}

var _ remotes.RangeFetcher = (*fetcher)(nil)

// Fetch implements remotes.Fetcher.
func (f *fetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return f.FetchFrom(ctx, desc, 0)
}

// FetchFrom implements remotes.RangeFetcher. Each pull host is tried in
// turn. The reader continues with a Range request when the connection
// breaks, fails when the content is longer or shorter than desc.Size,
// and, read from the start, when its digest is not desc.Digest.
func (f *fetcher) FetchFrom(ctx context.Context, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("fetch %s: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	if offset < 0 || offset > desc.Size {
		return nil, fmt.Errorf("fetch %s: offset %d outside [0, %d]: %w", desc.Digest, offset, desc.Size, errdefs.ErrInvalidArgument)
	}
	if p := f.r.cached(desc.Digest); p != nil && int64(len(p)) == desc.Size {
		return cachedReader(p[offset:]), nil
	}
	var errs []error
	for _, h := range f.rp.hosts {
		body, err := f.open(ctx, h, desc, offset)
		if err == nil {
			br := &blobReader{ctx: ctx, f: f, host: h, desc: desc, body: body, off: offset}
			if offset == 0 {
				br.digester = desc.Digest.Algorithm().Digester()
			}
			return br, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetch %s: %w", desc.Digest, ctx.Err())
		}
		log.G(ctx).WithError(err).WithField("host", h.Host).WithField("digest", desc.Digest).Debug("fetch failed on host")
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("fetch %s: %w", desc.Digest, firstInteresting(errs))
}

// open GETs desc from offset on host h.
func (f *fetcher) open(ctx context.Context, h RegistryHost, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	kind := "/blobs/"
	hdr := http.Header{}
	if images.IsManifestType(desc.MediaType) || images.IsIndexType(desc.MediaType) {
		kind = "/manifests/"
		hdr.Set("Accept", desc.MediaType+", "+manifestAccept)
	}
	if offset > 0 {
		hdr.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	u := f.rp.url(h, kind+desc.Digest.String())
	resp, err := f.r.do(ctx, &request{method: http.MethodGet, host: h, url: u, header: hdr,
		scopes: []string{repoScope(f.rp.named.Path(), "pull")}})
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != desc.Size {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: registry sends %d bytes, the descriptor says %d: %w", redact(u), resp.ContentLength, desc.Size, errdefs.ErrFailedPrecondition)
		}
		if offset > 0 {
			// The server ignored Range: skip what we have.
			if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
				resp.Body.Close()
				return nil, &transportError{method: http.MethodGet, url: redact(u), err: fmt.Errorf("skip to offset %d: %w", offset, err)}
			}
		}
		return resp.Body, nil
	case http.StatusPartialContent:
		start, err := contentRangeStart(resp.Header.Get("Content-Range"))
		if err != nil || start != offset {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: asked for bytes from %d, got Content-Range %q: %w", redact(u), offset, resp.Header.Get("Content-Range"), errdefs.ErrFailedPrecondition)
		}
		return resp.Body, nil
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %w", errdefs.ErrNotFound, newStatusError(resp))
	}
	return nil, newStatusError(resp)
}

// contentRangeStart reads the first byte position of "bytes a-b/n".
func contentRangeStart(s string) (int64, error) {
	s, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, errors.New("not a byte range")
	}
	a, _, ok := strings.Cut(s, "-")
	if !ok {
		return 0, errors.New("not a byte range")
	}
	return strconv.ParseInt(strings.TrimSpace(a), 10, 64)
}

// blobReader reads one blob, continuing after broken connections.
type blobReader struct {
	ctx      context.Context
	f        *fetcher
	host     RegistryHost
	desc     ocispec.Descriptor
	body     io.ReadCloser
	off      int64
	digester digest.Digester
	resumes  int
	done     bool
	err      error
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	for {
		if b.off >= b.desc.Size {
			b.err = b.finish()
			if b.err != nil {
				return 0, b.err
			}
			b.done = true
			return 0, io.EOF
		}
		if rest := b.desc.Size - b.off; int64(len(p)) > rest {
			p = p[:rest]
		}
		n, err := b.body.Read(p)
		if n > 0 {
			b.off += int64(n)
			if b.digester != nil {
				b.digester.Hash().Write(p[:n])
			}
			return n, nil
		}
		if err == nil {
			continue
		}
		// The body ended or broke before the blob did: continue from here.
		if cerr := b.resume(err); cerr != nil {
			b.err = cerr
			return 0, cerr
		}
	}
}

// finish checks that the body holds nothing more and that the digest is
// right.
func (b *blobReader) finish() error {
	var one [1]byte
	if n, _ := io.ReadFull(b.body, one[:]); n > 0 {
		return fmt.Errorf("fetch %s: registry sent more than the %d bytes the descriptor says: %w", b.desc.Digest, b.desc.Size, errdefs.ErrFailedPrecondition)
	}
	if b.digester != nil {
		if got := b.digester.Digest(); got != b.desc.Digest {
			return fmt.Errorf("fetch %s: content has digest %s: %w", b.desc.Digest, got, errdefs.ErrFailedPrecondition)
		}
	}
	return nil
}

func (b *blobReader) resume(cause error) error {
	b.body.Close()
	if b.ctx.Err() != nil {
		return b.ctx.Err()
	}
	if cause == io.EOF {
		cause = io.ErrUnexpectedEOF
	}
	if b.resumes >= maxResumes {
		return fmt.Errorf("fetch %s: connection broke at byte %d of %d, %d times: %w", b.desc.Digest, b.off, b.desc.Size, b.resumes+1, cause)
	}
	b.resumes++
	log.G(b.ctx).WithError(cause).WithField("digest", b.desc.Digest).WithField("offset", b.off).Debug("download interrupted; resuming")
	if err := sleep(b.ctx, b.f.r.retry.backoff(b.resumes, "")); err != nil {
		return err
	}
	body, err := b.f.open(b.ctx, b.host, b.desc, b.off)
	if err != nil {
		b.body = io.NopCloser(strings.NewReader(""))
		return fmt.Errorf("fetch %s: resume at byte %d after %v: %w", b.desc.Digest, b.off, cause, err)
	}
	b.body = body
	return nil
}

func (b *blobReader) Close() error { return b.body.Close() }
