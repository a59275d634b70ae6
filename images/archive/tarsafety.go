package archive

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
)

const (
	// maxEntries bounds the entries of one archive; docker save writes a
	// few per layer.
	maxEntries = 1 << 16
	// maxEntryName bounds an entry's name; ours are short.
	maxEntryName = 1024
	// maxLinkHops bounds symlink chains between entries.
	maxLinkHops = 16
	blockSize   = 512
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// cleanEntryName returns the archive-relative path of an entry, or an
// error for names that are absolute, climb out with "..", carry odd
// elements or characters; "" means the archive's root directory.
func cleanEntryName(name string) (string, error) {
	switch {
	case name == "":
		return "", invalidf("entry with an empty name")
	case len(name) > maxEntryName:
		return "", invalidf("entry name %.64q…: longer than %d bytes", name, maxEntryName)
	case strings.ContainsAny(name, "\x00\\"):
		return "", invalidf("entry %q: name contains NUL or backslash", name)
	case strings.HasPrefix(name, "/"):
		return "", invalidf("entry %q: absolute path", name)
	}
	n := strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/")
	if n == "" || n == "." {
		return "", nil
	}
	for _, part := range strings.Split(n, "/") {
		switch part {
		case "", ".", "..":
			return "", invalidf("entry %q: path element %q not allowed", name, part)
		}
	}
	return n, nil
}

// linkTarget resolves a symlink or hard link entry to the archive path it
// points at, refusing targets outside the archive.
func linkTarget(hdr *tar.Header, name string) (string, error) {
	target := hdr.Linkname
	if hdr.Typeflag == tar.TypeSymlink {
		if strings.HasPrefix(target, "/") {
			return "", invalidf("entry %q: symlink to absolute path %q", name, target)
		}
		target = path.Join(path.Dir(name), target)
	}
	if target == ".." || strings.HasPrefix(target, "../") {
		return "", invalidf("entry %q: link to %q leaves the archive", name, hdr.Linkname)
	}
	t, err := cleanEntryName(target)
	if err != nil || t == "" {
		return "", invalidf("entry %q: bad link target %q", name, hdr.Linkname)
	}
	return t, nil
}

// endReader counts what the tar reader consumes and remembers whether the
// bytes after the last entry's data are the two zero blocks that end a tar.
// Go's reader treats an archive cut at an entry boundary as complete; we
// do not, since a cut archive may lack the index written last.
type endReader struct {
	r       io.Reader
	n       int64
	dataEnd int64 // offset where the last entry's padded data ends
	zeros   int64 // count of zero bytes read consecutively at the tail
}

func (e *endReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	// Only the run of zeros at the end matters; scan from the back.
	t := 0
	for t < n && p[n-1-t] == 0 {
		t++
	}
	if t == n {
		e.zeros += int64(n)
	} else {
		e.zeros = int64(t)
	}
	e.n += int64(n)
	return n, err
}

// entryStarted records an entry whose data of size bytes starts now.
func (e *endReader) entryStarted(size int64) {
	e.dataEnd = e.n + (size+blockSize-1)/blockSize*blockSize
}

// terminated reports whether the archive ended with its end-of-archive
// marker after the last entry.
func (e *endReader) terminated() bool {
	tail := e.n - e.dataEnd
	return tail >= 2*blockSize && e.zeros >= tail
}
