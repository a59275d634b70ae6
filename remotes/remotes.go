// Package remotes moves images between a content store and registries.
// This package holds what is independent of the registry protocol: the
// Resolver, Fetcher and Pusher interfaces, progress reports, the ingest
// refs and labels pulls leave behind, and FetchBlob, which writes one blob
// through a content ingest and resumes an interrupted one. docker/ speaks
// the OCI distribution (Docker registry v2) protocol.
package remotes

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/berth-containers/berth/images"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Resolver finds images in registries and opens fetchers and pushers.
type Resolver interface {
	// Resolve returns the normalised name of ref and the descriptor of the
	// manifest or index it names. An unknown tag or digest is NotFound.
	Resolve(ctx context.Context, ref string) (name string, desc ocispec.Descriptor, err error)
	// Fetcher reads content of the repository ref names.
	Fetcher(ctx context.Context, ref string) (Fetcher, error)
	// Pusher writes content to the repository ref names; ref's tag, if
	// any, is what Pusher.Tag sets.
	Pusher(ctx context.Context, ref string) (Pusher, error)
}

// Fetcher opens blobs, manifests and indexes for reading.
type Fetcher interface {
	// Fetch returns desc's content; the reader fails if the content is
	// longer or shorter than desc.Size, or (read whole) has another digest.
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// RangeFetcher is a Fetcher that can start part way through a blob, so an
// interrupted download continues where it stopped.
type RangeFetcher interface {
	Fetcher
	// FetchFrom returns desc's content from offset on.
	FetchFrom(ctx context.Context, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error)
}

// Pusher writes content to a repository.
type Pusher interface {
	// Push uploads desc, reading its bytes from ra, unless the repository
	// has it already: then the error is errdefs.ErrAlreadyExists.
	// Manifests and indexes are put by digest. A blob whose descriptor
	// carries the annotation LabelDistributionSource+host naming another
	// repository of the same registry is mounted from there, not sent.
	Push(ctx context.Context, desc ocispec.Descriptor, ra io.ReaderAt) error
	// Tag puts the manifest or index desc under the pusher's tag.
	Tag(ctx context.Context, desc ocispec.Descriptor, ra io.ReaderAt) error
}

// ErrUnauthorized is what a registry's refusal to authenticate wraps
// (HTTP 401); ErrDenied a refusal to authorise (HTTP 403).
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrDenied       = errors.New("denied")
)

// LabelDistributionSource + registry host on a blob names the repository
// (as "path/of/repo", comma separated when several) it was pulled from,
// so a push to another repository on that registry can mount it.
const LabelDistributionSource = "containerd.io/distribution.source."

// Status of one item in a transfer, as progress reports it.
type Status string

const (
	StatusResolving   Status = "resolving"
	StatusResolved    Status = "resolved"
	StatusWaiting     Status = "waiting"
	StatusDownloading Status = "downloading"
	StatusUploading   Status = "uploading"
	StatusCommitting  Status = "committing"
	StatusDone        Status = "done"
	StatusExists      Status = "exists"
	StatusError       Status = "error"
)

// Progress reports the state of one item of a pull or push.
type Progress struct {
	// Ref names the item: the image reference while resolving, else its
	// ingest ref ("layer-sha256:…", see RefKey).
	Ref    string
	Desc   ocispec.Descriptor
	Status Status
	// Offset of Total bytes are done (Total is desc.Size).
	Offset, Total int64
	StartedAt     time.Time
	UpdatedAt     time.Time
	// Err is set with StatusError.
	Err error
}

// ProgressFunc receives progress reports; it is called from many
// goroutines and must be quick.
type ProgressFunc func(Progress)

// Report calls fn if it is not nil.
func (fn ProgressFunc) Report(p Progress) {
	if fn != nil {
		if p.UpdatedAt.IsZero() {
			p.UpdatedAt = time.Now()
		}
		fn(p)
	}
}

// RefKey is the ingest ref a transfer uses for desc: its kind and digest,
// "layer-sha256:…", "manifest-sha256:…", "index-sha256:…",
// "config-sha256:…" or "blob-sha256:…". Two pulls sharing a blob share
// its ingest, so one waits for the other instead of downloading twice,
// and a pull run again resumes what the last one left.
func RefKey(desc ocispec.Descriptor) string {
	kind := "blob"
	switch mt := desc.MediaType; {
	case images.IsIndexType(mt):
		kind = "index"
	case images.IsManifestType(mt):
		kind = "manifest"
	case images.IsConfigType(mt):
		kind = "config"
	case images.IsLayerType(mt):
		kind = "layer"
	}
	return kind + "-" + desc.Digest.String()
}

// SourceRepos splits a LabelDistributionSource value into repositories.
func SourceRepos(v string) []string {
	var out []string
	for _, r := range strings.Split(v, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// AppendSource adds repo to a LabelDistributionSource value unless it is
// already listed.
func AppendSource(v, repo string) string {
	for _, r := range SourceRepos(v) {
		if r == repo {
			return v
		}
	}
	if v == "" {
		return repo
	}
	return v + "," + repo
}
