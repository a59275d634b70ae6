package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/opencontainers/go-digest"
)

// maxRefLength bounds ingest refs; they are stored, never used as paths.
const maxRefLength = 4096

func validRef(ref string) error {
	switch {
	case ref == "":
		return fmt.Errorf("ingest ref must not be empty: %w", errdefs.ErrInvalidArgument)
	case len(ref) > maxRefLength:
		return fmt.Errorf("ingest ref longer than %d bytes: %w", maxRefLength, errdefs.ErrInvalidArgument)
	case !utf8.ValidString(ref) || strings.ContainsRune(ref, 0):
		return fmt.Errorf("ingest ref %q: invalid characters: %w", ref, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ingestDir names the ingest of ref by its hash so any ref is a safe path.
func (s *store) ingestDir(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(s.root, "ingest", hex.EncodeToString(sum[:]))
}

func (s *store) Status(ctx context.Context, ref string) (content.Status, error) {
	if err := validRef(ref); err != nil {
		return content.Status{}, err
	}
	return readStatus(s.ingestDir(ref), ref)
}

// readStatus reads the status kept in an ingest directory. When ref is not
// empty it must match the stored ref (a hash collision, or a stray dir).
func readStatus(dir, ref string) (content.Status, error) {
	notFound := func() error {
		return fmt.Errorf("ingest ref %q: %w", ref, errdefs.ErrNotFound)
	}
	stored, err := os.ReadFile(filepath.Join(dir, "ref"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return content.Status{}, notFound()
		}
		return content.Status{}, fmt.Errorf("ingest ref %q: read ref: %w", ref, err)
	}
	if ref != "" && string(stored) != ref {
		return content.Status{}, notFound()
	}
	ref = string(stored)
	fi, err := os.Stat(filepath.Join(dir, "data"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return content.Status{}, notFound()
		}
		return content.Status{}, fmt.Errorf("ingest ref %q: stat data: %w", ref, err)
	}
	st := content.Status{Ref: ref, Offset: fi.Size(), UpdatedAt: fi.ModTime()}
	if st.StartedAt, err = readTime(filepath.Join(dir, "startedat")); err != nil {
		return content.Status{}, fmt.Errorf("ingest ref %q: %w", ref, err)
	}
	// updatedat is written on close; the data mtime is newer while writing.
	if updated, err := readTime(filepath.Join(dir, "updatedat")); err == nil && updated.After(st.UpdatedAt) {
		st.UpdatedAt = updated
	}
	if st.Total, err = readTotal(filepath.Join(dir, "total")); err != nil {
		return content.Status{}, fmt.Errorf("ingest ref %q: %w", ref, err)
	}
	if st.Expected, err = readExpected(filepath.Join(dir, "expected")); err != nil {
		return content.Status{}, fmt.Errorf("ingest ref %q: %w", ref, err)
	}
	return st, nil
}

func readTime(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, fmt.Errorf("parse %s: %w", filepath.Base(path), err)
	}
	return t, nil
}

func writeTime(path string, t time.Time) error {
	return os.WriteFile(path, []byte(t.UTC().Format(time.RFC3339Nano)), 0o644)
}

// readTotal reads the expected size; a missing file means unknown (0).
func readTotal(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("read total: %w", err)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("parse total %q: invalid", b)
	}
	return n, nil
}

// readExpected reads the expected digest; a missing file means unknown.
func readExpected(path string) (digest.Digest, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("read expected: %w", err)
	}
	dgst, err := digest.Parse(string(b))
	if err != nil {
		return "", fmt.Errorf("parse expected %q: %w", b, err)
	}
	return dgst, nil
}

// ListStatuses lists ingests in progress; filters may test "ref" and
// "expected".
func (s *store) ListStatuses(ctx context.Context, exprs ...string) ([]content.Status, error) {
	filter, err := filters.ParseAll(exprs...)
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	root := filepath.Join(s.root, "ingest")
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	var out []content.Status
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		st, err := readStatus(filepath.Join(root, e.Name()), "")
		if err != nil {
			// An ingest being created, committed or aborted right now has
			// a partial directory; it is not an error to list around it.
			if errdefs.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("list ingests: %w", err)
		}
		if filter.Match(statusAdaptor(st)) {
			out = append(out, st)
		}
	}
	return out, nil
}

func statusAdaptor(st content.Status) filters.Adaptor {
	return filters.AdapterFunc(func(fieldpath []string) (string, bool) {
		if len(fieldpath) != 1 {
			return "", false
		}
		switch fieldpath[0] {
		case "ref":
			return st.Ref, true
		case "expected":
			return string(st.Expected), st.Expected != ""
		}
		return "", false
	})
}

// Abort removes the ingest of ref. A writer still open on it fails when it
// commits.
func (s *store) Abort(ctx context.Context, ref string) error {
	if err := validRef(ref); err != nil {
		return err
	}
	dir := s.ingestDir(ref)
	if _, err := readStatus(dir, ref); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("abort ingest ref %q: %w", ref, err)
	}
	return nil
}
