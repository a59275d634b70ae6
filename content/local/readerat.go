package local

import (
	"fmt"
	"io"
	"os"

	"github.com/berth-containers/berth/pkg/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// readerAt reads a committed blob. Blobs are immutable, so the size taken
// at open stays true.
type readerAt struct {
	f    *os.File
	size int64
}

// openReaderAt opens the blob at path; a descriptor size that disagrees
// with the blob is refused, since it means the caller's metadata is wrong.
func openReaderAt(path string, desc ocispec.Descriptor) (*readerAt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, blobError(desc.Digest, "open", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, blobError(desc.Digest, "stat", err)
	}
	if desc.Size > 0 && desc.Size != fi.Size() {
		f.Close()
		return nil, fmt.Errorf("blob %s: descriptor size %d, blob size %d: %w", desc.Digest, desc.Size, fi.Size(), errdefs.ErrFailedPrecondition)
	}
	return &readerAt{f: f, size: fi.Size()}, nil
}

func (r *readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d: %w", off, errdefs.ErrInvalidArgument)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	return r.f.ReadAt(p, off)
}

func (r *readerAt) Size() int64  { return r.size }
func (r *readerAt) Close() error { return r.f.Close() }
