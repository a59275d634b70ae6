package testimage

import (
	"bytes"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"strings"
)

// File is one entry of a layer. The type comes from Mode's type bits:
// a directory, a symlink (to Link), a hard link when Hardlink is set (to
// the layer path Link), else a regular file whose content is Data, or
// what Open returns (Size bytes), or the host file Source.
type File struct {
	// Path inside the image; a leading "/" is ignored.
	Path string
	// Mode holds permission and type bits; 0 means 0644 (0755 for dirs).
	Mode     fs.FileMode
	Data     []byte
	Source   string
	Open     func() (io.Reader, error)
	Size     int64
	Link     string
	Hardlink bool
	UID, GID int
}

// Regular is a file with content data.
func Regular(p string, data string, mode fs.FileMode) File {
	return File{Path: p, Data: []byte(data), Mode: mode}
}

// Dir is a directory.
func Dir(p string, mode fs.FileMode) File {
	return File{Path: p, Mode: fs.ModeDir | mode}
}

// Symlink is a symbolic link at p pointing at target.
func Symlink(p, target string) File {
	return File{Path: p, Mode: fs.ModeSymlink | 0o777, Link: target}
}

// Whiteout deletes p from the layers below, the OCI way: an empty file
// ".wh.NAME" beside it.
func Whiteout(p string) File {
	p = strings.TrimPrefix(p, "/")
	return File{Path: path.Join(path.Dir(p), ".wh."+path.Base(p))}
}

// OpaqueWhiteout hides everything below dir in lower layers.
func OpaqueWhiteout(dir string) File {
	return File{Path: path.Join(strings.TrimPrefix(dir, "/"), ".wh..wh..opq")}
}

// RandomFile is size bytes of incompressible data, the same for the same
// seed, generated while the layer is written rather than held in memory.
func RandomFile(p string, size int64, seed uint64) File {
	return File{Path: p, Size: size, Open: func() (io.Reader, error) {
		var key [32]byte
		for i := 0; i < 8; i++ {
			key[i] = byte(seed >> (8 * i))
		}
		return io.LimitReader(rand.NewChaCha8(key), size), nil
	}}
}

// reader returns the content of a regular file and its size.
func (f File) reader(open func(string) (io.ReadCloser, int64, error)) (io.Reader, int64, func() error, error) {
	switch {
	case f.Open != nil:
		r, err := f.Open()
		return r, f.Size, func() error { return nil }, err
	case f.Source != "":
		rc, size, err := open(f.Source)
		if err != nil {
			return nil, 0, nil, err
		}
		return rc, size, rc.Close, nil
	}
	return bytes.NewReader(f.Data), int64(len(f.Data)), func() error { return nil }, nil
}
