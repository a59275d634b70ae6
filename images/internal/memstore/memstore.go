// Package memstore is an in-memory content.Store for tests of images and
// its subpackages: it verifies digests and sizes on commit like the real
// store, and refuses an ingest of a blob it already has.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type blob struct {
	data []byte
	info content.Info
}

// Store is the in-memory store. The zero value is not usable; call New.
type Store struct {
	mu      sync.Mutex
	blobs   map[digest.Digest]*blob
	ingests map[string]*writer
	// Updates counts Update calls, for tests that check labelling.
	Updates int
}

// New returns an empty store.
func New() *Store {
	return &Store{blobs: map[digest.Digest]*blob{}, ingests: map[string]*writer{}}
}

// Put commits p directly and returns its descriptor of media type mt.
func (s *Store) Put(mt string, p []byte) ocispec.Descriptor {
	d := digest.FromBytes(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blobs[d]; !ok {
		now := time.Now()
		s.blobs[d] = &blob{data: append([]byte(nil), p...), info: content.Info{Digest: d, Size: int64(len(p)), CreatedAt: now, UpdatedAt: now}}
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(p))}
}

// Bytes returns a blob's content.
func (s *Store) Bytes(d digest.Digest) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[d]
	if !ok {
		return nil, false
	}
	return b.data, true
}

// Len is the number of committed blobs.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.blobs)
}

// Corrupt replaces a blob's bytes without changing its key.
func (s *Store) Corrupt(d digest.Digest, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.blobs[d]; ok {
		b.data = p
		b.info.Size = int64(len(p))
	}
}

func (s *Store) Info(_ context.Context, d digest.Digest) (content.Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[d]
	if !ok {
		return content.Info{}, fmt.Errorf("content %s: %w", d, errdefs.ErrNotFound)
	}
	return copyInfo(b.info), nil
}

func copyInfo(i content.Info) content.Info {
	if i.Labels != nil {
		l := make(map[string]string, len(i.Labels))
		for k, v := range i.Labels {
			l[k] = v
		}
		i.Labels = l
	}
	return i
}

func (s *Store) Update(_ context.Context, info content.Info, fieldpaths ...string) (content.Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Updates++
	b, ok := s.blobs[info.Digest]
	if !ok {
		return content.Info{}, fmt.Errorf("content %s: %w", info.Digest, errdefs.ErrNotFound)
	}
	if len(fieldpaths) == 0 {
		fieldpaths = []string{"labels"}
	}
	for _, f := range fieldpaths {
		switch {
		case f == "labels":
			b.info.Labels = copyInfo(content.Info{Labels: info.Labels}).Labels
		case strings.HasPrefix(f, "labels."):
			key := strings.TrimPrefix(f, "labels.")
			if b.info.Labels == nil {
				b.info.Labels = map[string]string{}
			}
			if v := info.Labels[key]; v != "" {
				b.info.Labels[key] = v
			} else {
				delete(b.info.Labels, key)
			}
		default:
			return content.Info{}, fmt.Errorf("cannot update %q: %w", f, errdefs.ErrInvalidArgument)
		}
	}
	b.info.UpdatedAt = time.Now()
	return copyInfo(b.info), nil
}

func (s *Store) Walk(_ context.Context, fn content.WalkFunc, _ ...string) error {
	s.mu.Lock()
	infos := make([]content.Info, 0, len(s.blobs))
	for _, b := range s.blobs {
		infos = append(infos, copyInfo(b.info))
	}
	s.mu.Unlock()
	for _, i := range infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) Delete(_ context.Context, d digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blobs[d]; !ok {
		return fmt.Errorf("content %s: %w", d, errdefs.ErrNotFound)
	}
	delete(s.blobs, d)
	return nil
}

type readerAt struct{ *bytes.Reader }

func (readerAt) Close() error { return nil }

func (s *Store) ReaderAt(_ context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("content %s: %w", desc.Digest, errdefs.ErrNotFound)
	}
	return readerAt{bytes.NewReader(b.data)}, nil
}

func (s *Store) Status(_ context.Context, ref string) (content.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.ingests[ref]
	if !ok {
		return content.Status{}, fmt.Errorf("ingest %q: %w", ref, errdefs.ErrNotFound)
	}
	return w.status(), nil
}

func (s *Store) ListStatuses(_ context.Context, _ ...string) ([]content.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []content.Status
	for _, w := range s.ingests {
		out = append(out, w.status())
	}
	return out, nil
}

func (s *Store) Abort(_ context.Context, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ingests[ref]; !ok {
		return fmt.Errorf("ingest %q: %w", ref, errdefs.ErrNotFound)
	}
	delete(s.ingests, ref)
	return nil
}

func (s *Store) Writer(_ context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	var o content.WriterOpts
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.Ref == "" {
		return nil, fmt.Errorf("ingest ref must be set: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.Desc.Digest != "" {
		if _, ok := s.blobs[o.Desc.Digest]; ok {
			return nil, fmt.Errorf("content %s: %w", o.Desc.Digest, errdefs.ErrAlreadyExists)
		}
	}
	if w, ok := s.ingests[o.Ref]; ok {
		return w, nil
	}
	w := &writer{s: s, ref: o.Ref, expected: o.Desc.Digest, total: o.Desc.Size, started: time.Now()}
	s.ingests[o.Ref] = w
	return w, nil
}

// OpenIngests is the number of ingests neither committed nor aborted.
func (s *Store) OpenIngests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ingests)
}

type writer struct {
	s        *Store
	ref      string
	buf      bytes.Buffer
	expected digest.Digest
	total    int64
	started  time.Time
}

func (w *writer) status() content.Status {
	return content.Status{Ref: w.ref, Offset: int64(w.buf.Len()), Total: w.total, Expected: w.expected, StartedAt: w.started, UpdatedAt: time.Now()}
}

func (w *writer) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *writer) Close() error                { return nil }
func (w *writer) Digest() digest.Digest       { return digest.FromBytes(w.buf.Bytes()) }
func (w *writer) Status() (content.Status, error) {
	return w.status(), nil
}

func (w *writer) Truncate(size int64) error {
	if size < 0 || size > int64(w.buf.Len()) {
		return fmt.Errorf("truncate to %d: %w", size, errdefs.ErrInvalidArgument)
	}
	w.buf.Truncate(int(size))
	return nil
}

func (w *writer) Commit(_ context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	var info content.Info
	for _, o := range opts {
		if err := o(&info); err != nil {
			return err
		}
	}
	data := append([]byte(nil), w.buf.Bytes()...)
	if size > 0 && int64(len(data)) != size {
		return fmt.Errorf("commit %q: size %d, expected %d: %w", w.ref, len(data), size, errdefs.ErrFailedPrecondition)
	}
	d := digest.FromBytes(data)
	if expected != "" && d != expected {
		return fmt.Errorf("commit %q: digest %s, expected %s: %w", w.ref, d, expected, errdefs.ErrFailedPrecondition)
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	delete(w.s.ingests, w.ref)
	if _, ok := w.s.blobs[d]; ok {
		return fmt.Errorf("content %s: %w", d, errdefs.ErrAlreadyExists)
	}
	now := time.Now()
	w.s.blobs[d] = &blob{data: data, info: content.Info{Digest: d, Size: int64(len(data)), CreatedAt: now, UpdatedAt: now, Labels: info.Labels}}
	return nil
}
