package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/berth-containers/berth/pkg/errdefs"
	"golang.org/x/sys/unix"
)

// create applies one non-whiteout entry named base inside the directory dir.
func (a *applier) create(dir, base string, hdr *tar.Header, tr *tar.Reader, sparse bool) error {
	pfd, pcanon, err := a.parentDir(dir)
	if err != nil {
		return fmt.Errorf("open parent directory: %w", err)
	}
	canon := joinName(pcanon, base)

	switch hdr.Typeflag {
	case tar.TypeDir:
		err = a.mkdir(pfd, base, hdr)
	case tar.TypeReg, tar.TypeRegA:
		err = a.writeFile(pfd, base, hdr, tr, sparse)
	case tar.TypeSymlink:
		err = a.symlink(pfd, base, hdr)
	case tar.TypeLink:
		err = a.hardlink(pfd, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = a.mknod(pfd, base, hdr)
	}
	if err != nil {
		return err
	}
	if a.opts.whiteouts == WhiteoutRemove {
		a.unpacked[canon] = struct{}{}
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirTimes = append(a.dirTimes, dirTime{canon: canon, atime: atime(hdr), mtime: hdr.ModTime})
	}
	return nil
}

// parentDir opens the parent directory of a new entry, reusing the last
// one: tars list a directory's entries together, and this saves two system
// calls per entry. The cached descriptor stays right as long as nothing on
// its path is removed; creating entries, even replacing the entry base
// inside it, does not change which directory the path names. Whiteouts
// remove arbitrary paths, so they drop the cache (dropParent).
func (a *applier) parentDir(dir string) (int, string, error) {
	if a.parent.valid && a.parent.dir == dir {
		return a.parent.fd, a.parent.canon, nil
	}
	a.dropParent()
	fd, canon, err := a.root.openDir(dir, true)
	if err != nil {
		return -1, "", err
	}
	a.parent = cachedDir{valid: true, dir: dir, fd: fd, canon: canon}
	return fd, canon, nil
}

func (a *applier) dropParent() {
	if a.parent.valid {
		a.root.release(a.parent.fd)
		a.parent = cachedDir{}
	}
}

// replace makes room for a new entry named base after creating it failed
// with EEXIST: whatever is there (file, symlink, whole directory tree) is
// removed, as a layer's entry replaces the lower layers' one.
func replace(pfd int, base string) error {
	if err := removeAt(pfd, base); err != nil {
		return fmt.Errorf("replace existing %q: %w", base, err)
	}
	return nil
}

func (a *applier) mkdir(pfd int, base string, hdr *tar.Header) error {
	err := unix.Mkdirat(pfd, base, 0o700)
	if errors.Is(err, unix.EEXIST) {
		// An existing directory is kept with its contents (the layer only
		// restates its metadata); anything else is replaced.
		var st unix.Stat_t
		if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat existing: %w", err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err = replace(pfd, base); err != nil {
				return err
			}
			err = unix.Mkdirat(pfd, base, 0o700)
		}
	}
	if err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer unix.Close(fd)
	return a.fdMetadata(fd, hdr)
}

func (a *applier) writeFile(pfd int, base string, hdr *tar.Header, tr *tar.Reader, sparse bool) error {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(pfd, base, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		// Never write through an existing name: it may be a symlink or a
		// hardlink shared with a lower layer's file.
		if err = replace(pfd, base); err != nil {
			return err
		}
		fd, err = unix.Openat(pfd, base, flags, 0o600)
	}
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	defer unix.Close(fd)
	if err := a.copyData(fd, tr, hdr.Size, sparse); err != nil {
		return fmt.Errorf("write file: %w", err)
	}
	if err := a.fdMetadata(fd, hdr); err != nil {
		return err
	}
	return setTimes(pfd, base, atime(hdr), hdr.ModTime)
}

// copyData copies the entry's data into fd through the shared buffer,
// filling it before each write so large files cost few system calls. For a
// sparse entry, all-zero chunks are skipped with lseek and the file is
// truncated to its size at the end, so holes stay holes on disk.
func (a *applier) copyData(fd int, r io.Reader, size int64, sparse bool) error {
	var written int64
	for written < size {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, a.buf[:min(int64(len(a.buf)), size-written)])
		if n > 0 {
			if sparse && bytes.Equal(a.buf[:n], zeros[:n]) {
				if _, serr := unix.Seek(fd, int64(n), io.SeekCurrent); serr != nil {
					return serr
				}
			} else if werr := writeAll(fd, a.buf[:n]); werr != nil {
				return werr
			}
			written += int64(n)
		}
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return fmt.Errorf("data ends after %d of %d bytes: %w", written, size, io.ErrUnexpectedEOF)
			}
			return err
		}
	}
	if sparse {
		return unix.Ftruncate(fd, size)
	}
	return nil
}

// zeros is compared against to find the holes of sparse files. It is an
// array, not a slice made at init: only ever read, it stays untouched in
// the binary's zero-filled data segment, where a 1 MiB heap slice counted
// as live heap in every process linking archive (berthd) and so raised
// the GC's heap goal, the heap a process may grow to, by 1.5 MiB at
// berthd's GOGC of 50.
var zeros [copyBufSize]byte

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		b = b[n:]
	}
	return nil
}

func (a *applier) symlink(pfd int, base string, hdr *tar.Header) error {
	// The target is stored as written: it is only ever resolved by the
	// walk in resolve_linux.go, inside the root.
	err := unix.Symlinkat(hdr.Linkname, pfd, base)
	if errors.Is(err, unix.EEXIST) {
		if err = replace(pfd, base); err != nil {
			return err
		}
		err = unix.Symlinkat(hdr.Linkname, pfd, base)
	}
	if err != nil {
		return fmt.Errorf("symlink to %q: %w", hdr.Linkname, err)
	}
	return a.pathMetadata(pfd, base, hdr, true)
}

func (a *applier) hardlink(pfd int, base string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %s: %w", quoteName(hdr.Linkname), err)
	}
	if target == "" {
		return fmt.Errorf("hardlink to the target directory: %w", errdefs.ErrInvalidArgument)
	}
	tdir, tbase := splitName(target)
	tfd, _, err := a.root.openDir(tdir, false)
	if err != nil {
		return fmt.Errorf("hardlink target %s: %w", quoteName(hdr.Linkname), err)
	}
	defer a.root.release(tfd)
	// Flags 0: the target's last component is not followed, so linking to
	// a symlink links the symlink itself, never what it points at.
	err = unix.Linkat(tfd, tbase, pfd, base, 0)
	if errors.Is(err, unix.EEXIST) {
		var tst, st unix.Stat_t
		if unix.Fstatat(tfd, tbase, &tst, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			tst.Dev == st.Dev && tst.Ino == st.Ino {
			return nil // already this very link
		}
		if err = replace(pfd, base); err != nil {
			return err
		}
		err = unix.Linkat(tfd, tbase, pfd, base, 0)
	}
	if err != nil {
		return fmt.Errorf("hardlink to %s: %w", quoteName(hdr.Linkname), err)
	}
	// A hardlink shares its target's inode and so its metadata.
	return nil
}

func (a *applier) mknod(pfd int, base string, hdr *tar.Header) error {
	mode := uint32(0o600)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	err := unix.Mknodat(pfd, base, mode, dev)
	if errors.Is(err, unix.EEXIST) {
		if err = replace(pfd, base); err != nil {
			return err
		}
		err = unix.Mknodat(pfd, base, mode, dev)
	}
	if err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	return a.pathMetadata(pfd, base, hdr, false)
}
