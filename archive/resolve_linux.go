package archive

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// maxSymlinks bounds symlink expansions while resolving one path, as the
// kernel's MAXSYMLINKS does, so a symlink loop fails with ELOOP.
const maxSymlinks = 40

// noOpenat2 is set once openat2 turns out to be missing (Linux < 5.6 or a
// seccomp filter), so later lookups go straight to the component walk.
var noOpenat2 atomic.Bool

// root is the target directory of an Apply or the tree a writer reads.
type root struct {
	fd   int // O_PATH directory descriptor of the target
	path string
}

func openRoot(dir string) (*root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open target %q: %w", dir, err)
	}
	return &root{fd: fd, path: dir}, nil
}

func (r *root) close() error { return unix.Close(r.fd) }

// release closes a descriptor returned by openDir.
func (r *root) release(fd int) {
	if fd != r.fd {
		unix.Close(fd)
	}
}

// openDir opens the directory rel (a clean relative path, "" for the root)
// inside the root and returns an O_PATH descriptor and its canonical path,
// the same directory named without symlinks. Symlinks met on the way are
// followed as if the root were "/": absolute targets restart at the root and
// ".." never climbs above it. With create, missing directories are made
// (0755, owned by the caller), as tar does for entries without parents.
// Release the descriptor with release.
func (r *root) openDir(rel string, create bool) (int, string, error) {
	if rel == "" {
		return r.fd, "", nil
	}
	// The common case: a path that exists and crosses no symlink. openat2
	// with these flags cannot leave the root, and a symlink anywhere on the
	// way fails it with ELOOP, sending us to the walk that resolves it.
	if fd, err := openBeneath(r.fd, rel); err == nil {
		return fd, rel, nil
	}
	return r.walk(rel, create)
}

// openBeneath opens a symlink-free relative directory path beneath dirfd.
func openBeneath(dirfd int, rel string) (int, error) {
	if noOpenat2.Load() {
		return -1, unix.ENOSYS
	}
	for range 8 {
		fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EAGAIN):
			// A concurrent rename somewhere on the system; the kernel asks
			// us to retry.
			continue
		case errors.Is(err, unix.ENOSYS):
			noOpenat2.Store(true)
		}
		return -1, err
	}
	return -1, unix.EAGAIN
}

// walk resolves rel one component at a time, the portable and general path:
// every component is looked up with fstatat(AT_SYMLINK_NOFOLLOW) relative to
// the directory descriptor reached so far and opened with O_NOFOLLOW, and a
// symlink's target is read and spliced into the remaining path rather than
// handed to the kernel to follow. The walk therefore only ever holds
// descriptors of directories inside the root.
func (r *root) walk(rel string, create bool) (int, string, error) {
	pending := strings.Split(rel, "/") // components still to resolve, in order
	var canon []string                 // components resolved so far, symlink-free
	fd := r.fd
	fail := func(err error) (int, string, error) {
		r.release(fd)
		return -1, "", err
	}
	links := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(canon) == 0 {
				continue // ".." at the root is the root, as in a chroot
			}
			canon = canon[:len(canon)-1]
			// Reopen the parent by its canonical path from the root instead
			// of opening "..", which could lead out of the root if the
			// directory were moved meanwhile.
			nfd, err := r.openCanonical(canon)
			if err != nil {
				return fail(fmt.Errorf("resolve %q: %w", strings.Join(canon, "/"), err))
			}
			r.release(fd)
			fd = nfd
			continue
		}
		var st unix.Stat_t
		err := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, c, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				err = unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		if err != nil {
			return fail(fmt.Errorf("resolve %q: %w", joinName(strings.Join(canon, "/"), c), err))
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fail(fmt.Errorf("open %q: %w", joinName(strings.Join(canon, "/"), c), err))
			}
			r.release(fd)
			fd = nfd
			canon = append(canon, c)
		case unix.S_IFLNK:
			links++
			if links > maxSymlinks {
				return fail(fmt.Errorf("resolve %q: too many symlinks: %w", rel, unix.ELOOP))
			}
			target, err := readlinkat(fd, c)
			if err != nil {
				return fail(fmt.Errorf("read symlink %q: %w", joinName(strings.Join(canon, "/"), c), err))
			}
			if strings.HasPrefix(target, "/") {
				// Absolute targets mean the root of the image, not the host.
				canon = canon[:0]
				r.release(fd)
				fd = r.fd
			}
			pending = append(strings.Split(target, "/"), pending...)
		default:
			return fail(fmt.Errorf("resolve %q: %w", joinName(strings.Join(canon, "/"), c), unix.ENOTDIR))
		}
	}
	return fd, strings.Join(canon, "/"), nil
}

// openCanonical opens a symlink-free path below the root, refusing any
// symlink on the way (the path was symlink-free when the walk produced it).
func (r *root) openCanonical(comps []string) (int, error) {
	if len(comps) == 0 {
		return r.fd, nil
	}
	rel := strings.Join(comps, "/")
	if fd, err := openBeneath(r.fd, rel); err == nil {
		return fd, nil
	}
	// openat2 is missing or refused: walk without following anything, which
	// also yields the precise error.
	fd := r.fd
	for _, c := range comps {
		nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		r.release(fd)
		if err != nil {
			return -1, err
		}
		fd = nfd
	}
	return fd, nil
}

// readlinkat reads a symlink's target whatever its length.
func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size > 1<<16 {
			return "", unix.ENAMETOOLONG
		}
	}
}
