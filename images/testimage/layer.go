package testimage

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// builtLayer is a layer written to a temporary file.
type builtLayer struct {
	file   *os.File
	digest digest.Digest // of the blob as stored (compressed or not)
	size   int64
	diffID digest.Digest // of the uncompressed tar
}

// buildLayer writes l as a tar (gzip-compressed at level when compress is
// set) into a temporary file in dir, hashing both forms as it goes.
func buildLayer(l Layer, dir string, compress bool, level int, mtime time.Time) (*builtLayer, error) {
	f, err := os.CreateTemp(dir, "berth-testimage-layer-")
	if err != nil {
		return nil, err
	}
	// The file is only ever reached through the open handle.
	os.Remove(f.Name())
	blobDigester := digest.Canonical.Digester()
	counter := &countWriter{}
	blobOut := io.MultiWriter(f, blobDigester.Hash(), counter)

	var (
		zw     *gzip.Writer
		tarOut io.Writer = blobOut
	)
	if compress {
		zw, err = gzip.NewWriterLevel(blobOut, level)
		if err != nil {
			f.Close()
			return nil, err
		}
		tarOut = zw
	}
	diffDigester := digest.Canonical.Digester()
	tw := tar.NewWriter(io.MultiWriter(tarOut, diffDigester.Hash()))

	files := l.Files
	if l.Dir != "" {
		fromDir, err := dirFiles(l.Dir)
		if err != nil {
			f.Close()
			return nil, err
		}
		files = append(fromDir, files...)
	}
	for _, file := range files {
		if err := writeEntry(tw, file, mtime); err != nil {
			f.Close()
			return nil, fmt.Errorf("layer file %q: %w", file.Path, err)
		}
	}
	err = tw.Close()
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &builtLayer{file: f, digest: blobDigester.Digest(), size: counter.n, diffID: diffDigester.Digest()}, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func openHost(p string) (io.ReadCloser, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", p)
	}
	return f, st.Size(), nil
}

func writeEntry(tw *tar.Writer, f File, mtime time.Time) error {
	name := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
	if name == "" {
		return fmt.Errorf("empty path")
	}
	hdr := &tar.Header{Name: name, Uid: f.UID, Gid: f.GID, ModTime: mtime, Mode: int64(f.Mode.Perm())}
	if f.Mode&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	if f.Mode&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	switch {
	case f.Mode.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		if f.Mode.Perm() == 0 {
			hdr.Mode |= 0o755
		}
		return tw.WriteHeader(hdr)
	case f.Mode&fs.ModeSymlink != 0:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, f.Link
		return tw.WriteHeader(hdr)
	case f.Hardlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeLink, strings.TrimPrefix(f.Link, "/")
		return tw.WriteHeader(hdr)
	}
	if f.Mode.Perm() == 0 {
		hdr.Mode |= 0o644
	}
	r, size, closeFn, err := f.reader(openHost)
	if err != nil {
		return err
	}
	defer closeFn()
	hdr.Typeflag, hdr.Size = tar.TypeReg, size
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, r)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("wrote %d bytes, expected %d", n, size)
	}
	return nil
}

// dirFiles lists a host directory as layer files, in lexical order, with
// ownership reset to root so the layer does not depend on who built it.
func dirFiles(root string) ([]File, error) {
	var out []File
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := File{Path: filepath.ToSlash(rel), Mode: info.Mode()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if f.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			f.Source = p
		case info.IsDir():
		default:
			return fmt.Errorf("%s: only files, directories and symlinks are supported", p)
		}
		out = append(out, f)
		return nil
	})
	return out, err
}
