package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Tar writes the whole tree under dir (not dir itself) to w as a tar
// stream: entries in byte order of their names, parents before children,
// hardlinked files as one file and links to it, xattrs as PAX records.
// The tree is read through directory descriptors without following
// symlinks, so a symlink inside dir is archived as a symlink.
func Tar(ctx context.Context, w io.Writer, dir string) error {
	rt, err := openRoot(dir)
	if err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	defer rt.close()
	tw := newTarWriter(ctx, w)
	defer tw.release()
	if err := tw.addTree(rt.fd, ""); err != nil {
		return fmt.Errorf("tar %q: %w", dir, err)
	}
	if err := tw.tw.Close(); err != nil {
		return fmt.Errorf("tar %q: %w", dir, err)
	}
	return nil
}

// tarWriter writes tree nodes as tar entries.
type tarWriter struct {
	ctx  context.Context
	tw   *tar.Writer
	bufp *[]byte
	// links maps a multiply-linked file to the first name it was written
	// under, so later names become hardlink entries.
	links map[fileID]string
}

type fileID struct{ dev, ino uint64 }

func newTarWriter(ctx context.Context, w io.Writer) *tarWriter {
	return &tarWriter{
		ctx:   ctx,
		tw:    tar.NewWriter(w),
		bufp:  bufPool.Get().(*[]byte),
		links: map[fileID]string{},
	}
}

func (t *tarWriter) release() { bufPool.Put(t.bufp) }

// addTree writes every node below the directory dirfd, named under rel.
func (t *tarWriter) addTree(dirfd int, rel string) error {
	names, err := readDirNames(dirfd)
	if err != nil {
		return fmt.Errorf("list %q: %w", rel, err)
	}
	sort.Strings(names)
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat %q: %w", joinName(rel, name), err)
		}
		if err := t.addNode(dirfd, name, joinName(rel, name), &st); err != nil {
			return err
		}
	}
	return nil
}

// addNode writes one node and, if it is a directory, everything below it.
func (t *tarWriter) addNode(dirfd int, name, rel string, st *unix.Stat_t) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	if err := t.writeNode(dirfd, name, rel, st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", rel, err)
	}
	defer unix.Close(fd)
	return t.addTree(fd, rel)
}

// writeNode writes the single entry for a node.
func (t *tarWriter) writeNode(dirfd int, name, rel string, st *unix.Stat_t) error {
	hdr, err := header(dirfd, name, rel, st)
	if errors.Is(err, errSkip) {
		return nil
	}
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg && st.Nlink > 1 {
		id := fileID{uint64(st.Dev), st.Ino}
		if first, ok := t.links[id]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
		} else {
			t.links[id] = rel
		}
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write header of %q: %w", rel, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	if err := t.copyFile(dirfd, name, st, hdr.Size); err != nil {
		return fmt.Errorf("write data of %q: %w", rel, err)
	}
	return nil
}

// copyFile copies exactly size bytes of the regular file name into the
// tar stream, refusing if it was replaced or shrank since it was stat'ed.
func (t *tarWriter) copyFile(dirfd int, name string, st *unix.Stat_t, size int64) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return err
	}
	if now.Ino != st.Ino || now.Dev != st.Dev {
		return fmt.Errorf("file replaced while being archived")
	}
	buf := *t.bufp
	var done int64
	for done < size {
		n, err := io.ReadFull(f, buf[:min(int64(len(buf)), size-done)])
		if n > 0 {
			if _, werr := t.tw.Write(buf[:n]); werr != nil {
				return werr
			}
			done += int64(n)
		}
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return fmt.Errorf("file shrank to %d of %d bytes while being archived", done, size)
			}
			return err
		}
	}
	return nil
}

// writeWhiteout writes the OCI whiteout for rel.
func (t *tarWriter) writeWhiteout(rel string) error {
	dir, base := splitName(rel)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     joinName(dir, whiteoutPrefix+base),
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatPAX,
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write whiteout for %q: %w", rel, err)
	}
	return nil
}

// sameContent compares two regular files of equal size byte by byte.
func sameContent(lfd int, lname string, ufd int, uname string, size int64, buf1, buf2 []byte) (bool, error) {
	open := func(dirfd int, name string) (*os.File, error) {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), name), nil
	}
	lf, err := open(lfd, lname)
	if err != nil {
		return false, err
	}
	defer lf.Close()
	uf, err := open(ufd, uname)
	if err != nil {
		return false, err
	}
	defer uf.Close()
	for size > 0 {
		n := min(int64(len(buf1)), size)
		if _, err := io.ReadFull(lf, buf1[:n]); err != nil {
			return false, nil // changed size under us: treat as different
		}
		if _, err := io.ReadFull(uf, buf2[:n]); err != nil {
			return false, nil
		}
		if !bytes.Equal(buf1[:n], buf2[:n]) {
			return false, nil
		}
		size -= n
	}
	return true, nil
}
