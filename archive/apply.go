package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
)

// copyBufSize is the size of the buffer file data is copied through; large
// enough that a big layer file costs few read and write calls.
const copyBufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// Apply unpacks the uncompressed layer tar r onto the directory root, which
// may already hold earlier layers, and returns the number of bytes read from
// r. It reads r to its end, so a caller hashing r sees the whole layer.
//
// Every entry lands inside root: names climbing out with ".." are refused,
// absolute names are taken relative to root, symlinks (from this layer or an
// earlier one) are resolved as if root were "/", hardlink targets must lie
// inside root, and whiteouts only ever remove things inside root. Entries
// that cannot be applied safely fail the whole Apply with an error naming
// them; what was applied before stays, so the caller discards the target.
//
// Extended attributes come from PAX SCHILY.xattr records. trusted.overlay.*
// attributes are dropped (they would let a layer steer overlayfs); an
// attribute the file system does not support, or a security.* attribute the
// kernel refuses (an SELinux label on a host without SELinux), is skipped
// with a debug log; any other failure fails the entry.
func Apply(ctx context.Context, root string, r io.Reader, opts ...ApplyOpt) (int64, error) {
	var o applyOptions
	for _, opt := range opts {
		opt(&o)
	}
	rt, err := openRoot(root)
	if err != nil {
		return 0, fmt.Errorf("apply layer: %w", err)
	}
	defer rt.close()

	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)

	a := &applier{
		ctx:      ctx,
		root:     rt,
		opts:     o,
		buf:      *bufp,
		unpacked: map[string]struct{}{},
		chown:    os.Geteuid() == 0,
	}
	defer a.dropParent()
	cr := &countingReader{r: r, max: o.maxSize}
	tr := tar.NewReader(cr)
	for {
		if err := ctx.Err(); err != nil {
			return cr.n, fmt.Errorf("apply layer: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cr.n, fmt.Errorf("apply layer: read tar header: %w", err)
		}
		if err := a.entry(hdr, tr, cr); err != nil {
			return cr.n, fmt.Errorf("apply layer: entry %s: %w", quoteName(hdr.Name), err)
		}
	}
	if err := a.finish(); err != nil {
		return cr.n, fmt.Errorf("apply layer: %w", err)
	}
	// Consume what follows the end-of-archive marker (zero padding to the
	// record size) so that callers digesting r see every byte.
	if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{cr}, a.buf); err != nil {
		return cr.n, fmt.Errorf("apply layer: read trailer: %w", err)
	}
	return cr.n, nil
}

// applier holds the state of one Apply.
type applier struct {
	ctx  context.Context
	root *root
	opts applyOptions
	buf  []byte
	// unpacked holds the canonical paths this layer created, which an
	// opaque whiteout in remove mode keeps (the marker may come after them).
	unpacked map[string]struct{}
	// dirTimes are set after all entries, because creating entries in a
	// directory changes its mtime.
	dirTimes []dirTime
	chown    bool
	parent   cachedDir // see parentDir
	// sparseBytes is the logical size of the sparse files so far.
	sparseBytes int64
}

type cachedDir struct {
	valid      bool
	dir, canon string
	fd         int
}

type dirTime struct {
	canon        string
	atime, mtime time.Time
}

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

func (a *applier) entry(hdr *tar.Header, tr *tar.Reader, cr *countingReader) error {
	sparse := isSparse(hdr)
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil // global PAX defaults carry nothing Apply uses
	case tar.TypeGNUSparse, tar.TypeCont:
		// Old GNU sparse files (the reader fills in the holes) and
		// contiguous files are regular files to us, as to GNU tar.
		hdr.Typeflag = tar.TypeReg
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("unsupported entry type %q: %w", hdr.Typeflag, errdefs.ErrNotImplemented)
	}
	if sparse {
		// Its size is logical: the stream holds only the data regions,
		// so the stream limit does not bound it.
		limit := cr.max
		if limit <= 0 {
			limit = DefaultMaxSparse
		}
		if hdr.Size > limit-a.sparseBytes {
			return fmt.Errorf("sparse files expand to more than the limit of %d bytes: %w", limit, errdefs.ErrInvalidArgument)
		}
		a.sparseBytes += hdr.Size
	} else if cr.max > 0 && hdr.Size > cr.max-cr.n {
		return fmt.Errorf("%d bytes of data exceed the layer size limit of %d bytes: %w", hdr.Size, cr.max, errdefs.ErrInvalidArgument)
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		// "./" and "/" describe the target itself, which belongs to the
		// caller (a snapshot's root), not to the layer.
		log.G(a.ctx).WithField("entry", hdr.Name).Debug("apply layer: skipping entry naming the root")
		return nil
	}
	dir, base := splitName(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dir, base)
	}
	return a.create(dir, base, hdr, tr, sparse)
}

// isSparse reports whether the entry is a GNU sparse file (old 'S' type or
// PAX GNU.sparse records), whose holes the tar reader fills with zeros.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// finish sets the times of the directories the layer described.
func (a *applier) finish() error {
	for _, d := range a.dirTimes {
		dir, base := splitName(d.canon)
		var comps []string
		if dir != "" {
			comps = strings.Split(dir, "/")
		}
		fd, err := a.root.openCanonical(comps)
		if err != nil {
			// Removed or replaced by a symlink by a later entry; there is
			// no directory left to stamp.
			continue
		}
		err = setTimes(fd, base, d.atime, d.mtime)
		a.root.release(fd)
		if err != nil && !isNotExist(err) {
			return fmt.Errorf("set times of %q: %w", d.canon, err)
		}
	}
	return nil
}

// countingReader counts the bytes read and fails once more than max (when
// positive) have been asked for.
type countingReader struct {
	r   io.Reader
	n   int64
	max int64
}

var errTooLarge = errors.New("layer exceeds the size limit")

func (c *countingReader) Read(p []byte) (int, error) {
	if c.max > 0 {
		if c.n >= c.max {
			// Probe one byte: at exactly max bytes the stream may be over.
			var one [1]byte
			if n, err := io.ReadFull(c.r, one[:]); n == 0 {
				return 0, err
			}
			return 0, fmt.Errorf("%w of %d bytes: %w", errTooLarge, c.max, errdefs.ErrInvalidArgument)
		}
		if rem := c.max - c.n; int64(len(p)) > rem {
			p = p[:rem]
		}
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
