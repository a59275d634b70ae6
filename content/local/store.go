// Package local is Berth's on-disk content store. Layout under root:
//
//	blobs/<alg>/<hex>         committed blobs, immutable, mode 0444
//	ingest/<sha256(ref)>/     one directory per ingest in progress:
//	    data                  the bytes written so far (its size is the offset)
//	    ref                   the ingest's ref, verbatim
//	    startedat, updatedat  RFC 3339 times
//	    total, expected       the size and digest the writer was given, if any
//
// Refs are client strings and never become path elements: the ingest
// directory is named by the hash of the ref. Digests are parsed and
// validated before they name a path.
//
// The local store keeps no labels: labels live in the metadata layer (bolt),
// which wraps this store per namespace. Update therefore accepts "labels"
// field paths and returns the blob's info unchanged.
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	// Register the digest algorithms go-digest can then verify.
	_ "crypto/sha256"
	_ "crypto/sha512"
)

type store struct {
	root string
}

// NewStore returns a content store rooted at root, creating the blob and
// ingest directories.
func NewStore(root string) (content.Store, error) {
	if root == "" {
		return nil, fmt.Errorf("content store root must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("content store root %q: %w", root, err)
	}
	for _, dir := range []string{
		filepath.Join(abs, "blobs", string(digest.Canonical)),
		filepath.Join(abs, "ingest"),
	} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("create content store directory: %w", err)
		}
	}
	return &store{root: abs}, nil
}

// validDigest parses dgst so that its algorithm and hex are safe path
// elements and the algorithm can be computed.
func validDigest(dgst digest.Digest) error {
	if _, err := digest.Parse(string(dgst)); err != nil {
		return fmt.Errorf("digest %q: %v: %w", dgst, err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// blobPath returns where the blob named dgst lives; dgst must be valid.
func (s *store) blobPath(dgst digest.Digest) string {
	return filepath.Join(s.root, "blobs", string(dgst.Algorithm()), dgst.Encoded())
}

func (s *store) Info(ctx context.Context, dgst digest.Digest) (content.Info, error) {
	if err := validDigest(dgst); err != nil {
		return content.Info{}, err
	}
	fi, err := os.Stat(s.blobPath(dgst))
	if err != nil {
		return content.Info{}, blobError(dgst, "stat", err)
	}
	return infoFromFile(dgst, fi), nil
}

// infoFromFile builds a blob's info. Blobs never change after commit, so
// the mtime (the last write into the ingest) is when the blob was created.
func infoFromFile(dgst digest.Digest, fi fs.FileInfo) content.Info {
	return content.Info{
		Digest:    dgst,
		Size:      fi.Size(),
		CreatedAt: fi.ModTime(),
		UpdatedAt: fi.ModTime(),
	}
}

// Update accepts only label field paths and, since this store keeps no
// labels (the metadata layer does), returns the blob's info as stored.
func (s *store) Update(ctx context.Context, info content.Info, fieldpaths ...string) (content.Info, error) {
	for _, p := range fieldpaths {
		if p != "labels" && !(len(p) > len("labels.") && p[:len("labels.")] == "labels.") {
			return content.Info{}, fmt.Errorf("blob %s: cannot update field %q: %w", info.Digest, p, errdefs.ErrInvalidArgument)
		}
	}
	return s.Info(ctx, info.Digest)
}

func (s *store) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := validDigest(dgst); err != nil {
		return err
	}
	if err := os.Remove(s.blobPath(dgst)); err != nil {
		return blobError(dgst, "delete", err)
	}
	return nil
}

// Walk visits committed blobs; filters may test "digest" and "size".
func (s *store) Walk(ctx context.Context, fn content.WalkFunc, exprs ...string) error {
	filter, err := filters.ParseAll(exprs...)
	if err != nil {
		return fmt.Errorf("walk content: %w", err)
	}
	blobs := filepath.Join(s.root, "blobs")
	algs, err := os.ReadDir(blobs)
	if err != nil {
		return fmt.Errorf("walk content: %w", err)
	}
	for _, alg := range algs {
		if !alg.IsDir() || !digest.Algorithm(alg.Name()).Available() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(blobs, alg.Name()))
		if err != nil {
			return fmt.Errorf("walk content: %w", err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			dgst := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), e.Name())
			if !e.Type().IsRegular() || dgst.Validate() != nil {
				continue // not ours; never fail a walk over a stray file
			}
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted during the walk
				}
				return fmt.Errorf("walk content: %w", err)
			}
			info := infoFromFile(dgst, fi)
			if !filter.Match(infoAdaptor(info)) {
				continue
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

func infoAdaptor(info content.Info) filters.Adaptor {
	return filters.AdapterFunc(func(fieldpath []string) (string, bool) {
		if len(fieldpath) != 1 {
			return "", false
		}
		switch fieldpath[0] {
		case "digest":
			return string(info.Digest), true
		case "size":
			return strconv.FormatInt(info.Size, 10), true
		}
		return "", false
	})
}

func (s *store) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	if err := validDigest(desc.Digest); err != nil {
		return nil, err
	}
	return openReaderAt(s.blobPath(desc.Digest), desc)
}

// blobError wraps a file system error with the blob's digest and kind.
func blobError(dgst digest.Digest, op string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", dgst, errdefs.ErrNotFound)
	}
	return fmt.Errorf("blob %s: %s: %w", dgst, op, err)
}
