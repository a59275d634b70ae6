// Package content defines Berth's content store: immutable blobs addressed
// by digest, written through resumable ingests. local/ is the on-disk store;
// metadata/ wraps it to give each namespace its own view.
package content

import (
	"context"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Info describes a committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
	UpdatedAt time.Time
	Labels    map[string]string
}

// Status describes an ingest in progress.
type Status struct {
	Ref       string
	Offset    int64
	Total     int64
	Expected  digest.Digest
	StartedAt time.Time
	UpdatedAt time.Time
}

// WalkFunc is called for each blob; returning an error stops the walk.
type WalkFunc func(Info) error

// ReaderAt reads a blob at offsets.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Provider opens blobs for reading.
type Provider interface {
	// ReaderAt opens the blob named by desc.Digest. desc.Size may be 0 when
	// unknown. A remote provider given the size opens lazily: a missing
	// blob's NotFound then comes from the first read, so code asking
	// whether a blob is there uses Info (see images.Check).
	ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error)
}

// Ingester opens writers.
type Ingester interface {
	// Writer opens (or resumes) the ingest named by WriterOpts.Ref.
	Writer(ctx context.Context, opts ...WriterOpt) (Writer, error)
}

// Manager inspects and changes committed blobs.
type Manager interface {
	Info(ctx context.Context, dgst digest.Digest) (Info, error)
	// Update changes the fields named (only "labels" and "labels.KEY").
	Update(ctx context.Context, info Info, fieldpaths ...string) (Info, error)
	// Walk visits blobs matching all filters (containerd filter syntax).
	Walk(ctx context.Context, fn WalkFunc, filters ...string) error
	Delete(ctx context.Context, dgst digest.Digest) error
}

// IngestManager inspects and aborts ingests.
type IngestManager interface {
	Status(ctx context.Context, ref string) (Status, error)
	ListStatuses(ctx context.Context, filters ...string) ([]Status, error)
	Abort(ctx context.Context, ref string) error
}

// Store is the whole content store.
type Store interface {
	Manager
	Provider
	IngestManager
	Ingester
}

// Writer writes one ingest. Commit verifies size and digest and makes the
// blob visible; on a mismatch nothing is committed.
type Writer interface {
	io.WriteCloser
	Digest() digest.Digest
	Commit(ctx context.Context, size int64, expected digest.Digest, opts ...Opt) error
	Status() (Status, error)
	Truncate(size int64) error
}

// Opt configures Commit.
type Opt func(*Info) error

// WithLabels sets labels on the committed blob.
func WithLabels(labels map[string]string) Opt {
	return func(info *Info) error {
		info.Labels = labels
		return nil
	}
}

// WriterOpts configures Writer.
type WriterOpts struct {
	Ref  string
	Desc ocispec.Descriptor
}

// WriterOpt sets a WriterOpts field.
type WriterOpt func(*WriterOpts) error

// WithRef names the ingest; the same ref resumes it.
func WithRef(ref string) WriterOpt {
	return func(o *WriterOpts) error { o.Ref = ref; return nil }
}

// WithDescriptor gives the expected digest and size.
func WithDescriptor(desc ocispec.Descriptor) WriterOpt {
	return func(o *WriterOpts) error { o.Desc = desc; return nil }
}
