package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/opencontainers/go-digest"
)

// Writer opens the ingest named by the ref, resuming it at its offset if
// it exists. Only one writer may hold a ref; others get ErrUnavailable.
func (s *store) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var wo content.WriterOpts
	for _, o := range opts {
		if err := o(&wo); err != nil {
			return nil, err
		}
	}
	if err := validRef(wo.Ref); err != nil {
		return nil, err
	}
	if wo.Desc.Size < 0 {
		return nil, fmt.Errorf("ingest ref %q: negative size %d: %w", wo.Ref, wo.Desc.Size, errdefs.ErrInvalidArgument)
	}
	expected := wo.Desc.Digest
	if expected != "" {
		if err := validDigest(expected); err != nil {
			return nil, err
		}
		if _, err := os.Stat(s.blobPath(expected)); err == nil {
			return nil, fmt.Errorf("blob %s: %w", expected, errdefs.ErrAlreadyExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, blobError(expected, "stat", err)
		}
	}
	if err := lockRef(wo.Ref); err != nil {
		return nil, err
	}
	w, err := s.openIngest(wo.Ref, wo.Desc.Size, expected)
	if err != nil {
		unlockRef(wo.Ref)
		return nil, err
	}
	return w, nil
}

// openIngest opens and flocks the data file of ref's ingest, then starts or
// resumes it. The caller holds the in-process ref lock.
func (s *store) openIngest(ref string, total int64, expected digest.Digest) (*writer, error) {
	dir := s.ingestDir(ref)
	dataPath := filepath.Join(dir, "data")
	var f *os.File
	// Another process may commit or abort the ingest between our mkdir,
	// open and flock; retry until the file we locked is the one in place.
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			return nil, fmt.Errorf("open ingest ref %q: removed concurrently: %w", ref, errdefs.ErrUnavailable)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create ingest ref %q: %w", ref, err)
		}
		var err error
		f, err = os.OpenFile(dataPath, os.O_RDWR|os.O_CREATE, 0o644)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("open ingest ref %q: %w", ref, err)
		}
		if err := flockData(f, ref); err != nil {
			f.Close()
			return nil, err
		}
		held, err1 := f.Stat()
		inPlace, err2 := os.Stat(dataPath)
		if err1 == nil && err2 == nil && os.SameFile(held, inPlace) {
			break
		}
		f.Close()
	}
	w, err := s.startOrResume(f, dir, ref, total, expected)
	if err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

func (s *store) startOrResume(f *os.File, dir, ref string, total int64, expected digest.Digest) (*writer, error) {
	st, err := readStatus(dir, ref)
	switch {
	case errdefs.IsNotFound(err):
		// New ingest; data may hold bytes from a writer that crashed
		// before writing the ref file, which no one can resume.
		if err := f.Truncate(0); err != nil {
			return nil, fmt.Errorf("start ingest ref %q: truncate data: %w", ref, err)
		}
		now := time.Now()
		st = content.Status{Ref: ref, Total: total, Expected: expected, StartedAt: now, UpdatedAt: now}
		if err := writeIngestFiles(dir, st); err != nil {
			return nil, fmt.Errorf("start ingest ref %q: %w", ref, err)
		}
	case err != nil:
		return nil, err
	default:
		if total > 0 && st.Total > 0 && total != st.Total {
			return nil, fmt.Errorf("resume ingest ref %q: size %d differs from ingest's %d: %w", ref, total, st.Total, errdefs.ErrFailedPrecondition)
		}
		if expected != "" && st.Expected != "" && expected != st.Expected {
			return nil, fmt.Errorf("resume ingest ref %q: digest %s differs from ingest's %s: %w", ref, expected, st.Expected, errdefs.ErrFailedPrecondition)
		}
		if (total > 0 && st.Total == 0) || (expected != "" && st.Expected == "") {
			if total > 0 {
				st.Total = total
			}
			if expected != "" {
				st.Expected = expected
			}
			if err := writeIngestFiles(dir, st); err != nil {
				return nil, fmt.Errorf("resume ingest ref %q: %w", ref, err)
			}
		}
	}
	alg := digest.Canonical
	if st.Expected != "" {
		alg = st.Expected.Algorithm()
	}
	w := &writer{s: s, f: f, dir: dir, ref: ref, status: st, digester: alg.Digester()}
	// Resuming: rebuild the digest state from the bytes already written.
	if err := w.rehash(st.Offset); err != nil {
		return nil, fmt.Errorf("resume ingest ref %q: %w", ref, err)
	}
	return w, nil
}

// writeIngestFiles writes the metadata files of a new or amended ingest;
// the ref file goes last because its presence marks the ingest complete.
func writeIngestFiles(dir string, st content.Status) error {
	if err := writeTime(filepath.Join(dir, "startedat"), st.StartedAt); err != nil {
		return err
	}
	if err := writeTime(filepath.Join(dir, "updatedat"), st.UpdatedAt); err != nil {
		return err
	}
	if st.Total > 0 {
		if err := os.WriteFile(filepath.Join(dir, "total"), []byte(strconv.FormatInt(st.Total, 10)), 0o644); err != nil {
			return err
		}
	}
	if st.Expected != "" {
		if err := os.WriteFile(filepath.Join(dir, "expected"), []byte(st.Expected), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "ref"), []byte(st.Ref), 0o644)
}

// writer writes one ingest; it is not safe for concurrent use.
type writer struct {
	s        *store
	f        *os.File
	dir      string
	ref      string
	status   content.Status
	digester digest.Digester
	closed   bool
}

// rehash resets the digest to the first n bytes of data and positions the
// file at n, the offset the next write goes to.
func (w *writer) rehash(n int64) error {
	d := w.digester.Digest().Algorithm().Digester()
	if _, err := io.Copy(d.Hash(), io.NewSectionReader(w.f, 0, n)); err != nil {
		return fmt.Errorf("hash data: %w", err)
	}
	if _, err := w.f.Seek(n, io.SeekStart); err != nil {
		return fmt.Errorf("seek data: %w", err)
	}
	w.digester = d
	w.status.Offset = n
	return nil
}

func (w *writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("ingest ref %q: write after close: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	n, err := w.f.Write(p)
	w.digester.Hash().Write(p[:n])
	w.status.Offset += int64(n)
	w.status.UpdatedAt = time.Now()
	if err != nil {
		return n, fmt.Errorf("ingest ref %q: write data: %w", w.ref, err)
	}
	return n, nil
}

// Digest is the digest of the bytes written so far.
func (w *writer) Digest() digest.Digest { return w.digester.Digest() }

func (w *writer) Status() (content.Status, error) {
	if w.closed {
		return content.Status{}, fmt.Errorf("ingest ref %q: writer closed: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	return w.status, nil
}

// Truncate discards the bytes after size; size must not be past the offset.
func (w *writer) Truncate(size int64) error {
	if w.closed {
		return fmt.Errorf("ingest ref %q: truncate after close: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	if size < 0 || size > w.status.Offset {
		return fmt.Errorf("ingest ref %q: truncate to %d outside [0, %d]: %w", w.ref, size, w.status.Offset, errdefs.ErrInvalidArgument)
	}
	if err := w.f.Truncate(size); err != nil {
		return fmt.Errorf("ingest ref %q: truncate data: %w", w.ref, err)
	}
	if err := w.rehash(size); err != nil {
		return fmt.Errorf("ingest ref %q: %w", w.ref, err)
	}
	w.status.UpdatedAt = time.Now()
	return nil
}

// Commit verifies size and digest and renames the data into the blob
// store. A mismatch discards the ingest: its bytes can never become the
// blob the caller wanted, and leaving them would make a retry resume them.
// Labels given in opts are checked but not kept (see the package comment).
func (w *writer) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	if w.closed {
		return fmt.Errorf("commit ingest ref %q: writer closed: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	var info content.Info
	for _, o := range opts {
		if err := o(&info); err != nil {
			return fmt.Errorf("commit ingest ref %q: %w", w.ref, err)
		}
	}
	if expected == "" {
		expected = w.status.Expected
	} else if err := validDigest(expected); err != nil {
		return err
	}
	if size == 0 {
		size = w.status.Total
	}
	if size < 0 {
		return fmt.Errorf("commit ingest ref %q: negative size %d: %w", w.ref, size, errdefs.ErrInvalidArgument)
	}
	fi, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("commit ingest ref %q: stat data: %w", w.ref, err)
	}
	if size > 0 && fi.Size() != size {
		w.discard()
		return fmt.Errorf("commit ingest ref %q: wrote %d bytes, expected %d: %w", w.ref, fi.Size(), size, errdefs.ErrFailedPrecondition)
	}
	dgst := w.digester.Digest()
	if expected != "" && expected.Algorithm() != dgst.Algorithm() {
		// The ingest was hashed with another algorithm; verify with the
		// caller's so a sha512 expectation is checked as sha512.
		d := expected.Algorithm().Digester()
		if _, err := io.Copy(d.Hash(), io.NewSectionReader(w.f, 0, fi.Size())); err != nil {
			return fmt.Errorf("commit ingest ref %q: hash data: %w", w.ref, err)
		}
		dgst = d.Digest()
	}
	if expected != "" && dgst != expected {
		w.discard()
		return fmt.Errorf("commit ingest ref %q: unexpected digest %s, expected %s: %w", w.ref, dgst, expected, errdefs.ErrFailedPrecondition)
	}
	target := w.s.blobPath(dgst)
	if _, err := os.Stat(target); err == nil {
		w.discard()
		return fmt.Errorf("blob %s: %w", dgst, errdefs.ErrAlreadyExists)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o711); err != nil {
		return fmt.Errorf("commit ingest ref %q: create blob directory: %w", w.ref, err)
	}
	// One fsync, of the data, so a crash after the rename never leaves a
	// blob whose name promises bytes that are not on disk.
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("commit ingest ref %q: sync data: %w", w.ref, err)
	}
	if err := w.f.Chmod(0o444); err != nil {
		return fmt.Errorf("commit ingest ref %q: make blob read-only: %w", w.ref, err)
	}
	if err := os.Rename(filepath.Join(w.dir, "data"), target); err != nil {
		return fmt.Errorf("commit ingest ref %q: rename into blobs: %w", w.ref, err)
	}
	w.discard()
	return nil
}

// discard removes the ingest directory while still holding its locks, so
// no other writer starts on it half-removed, then closes the writer.
func (w *writer) discard() {
	os.RemoveAll(w.dir)
	w.f.Close()
	w.closed = true
	unlockRef(w.ref)
}

// Close keeps the ingest for a later writer to resume.
func (w *writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	defer unlockRef(w.ref)
	err := writeTime(filepath.Join(w.dir, "updatedat"), w.status.UpdatedAt)
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // aborted meanwhile
		return fmt.Errorf("close ingest ref %q: %w", w.ref, err)
	}
	return nil
}
