package oci

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	// maxSymlinks matches the kernel's limit on links followed in one lookup.
	maxSymlinks = 40
	// maxRootfsFile bounds how much of an image's /etc/passwd or /etc/group
	// we read: the image is untrusted and the file could be anything.
	maxRootfsFile = 16 << 20
)

// errLayoutUnsupported reports overlay layers using a feature the
// user-space reader does not implement (redirected directories, metacopy
// files); the caller mounts the layers instead.
var errLayoutUnsupported = errors.New("overlay layout not readable in user space")

// RootfsLayers is a container's root file system as the directories an
// overlay mount would stack, read without mounting them: looking up a file
// in user space costs a few dozen system calls where a temporary overlay
// mount and its unmount cost ~0.6 ms and a sync of the backing file
// system (on every `ctr run` resolving the image's user and groups).
type RootfsLayers struct {
	// Dirs are the layers, top first: the upper dir (if any), then the
	// lower dirs in overlay's lowerdir order.
	Dirs []string
	// Overlay applies overlay's rules between the layers: whiteouts
	// (character devices 0/0) hide what is below, opaque directories hide
	// the lower layers' directories of the same path. Without it Dirs has
	// one element, read as a plain directory.
	Overlay bool
	// UserXattr: the overlay's own xattrs are user.overlay.* (the
	// "userxattr" mount option), not trusted.overlay.*.
	UserXattr bool
}

// readRootfsFile reads the regular file at name inside root as if root were
// "/".
func readRootfsFile(root, name string) ([]byte, error) {
	return readLayersFile(RootfsLayers{Dirs: []string{root}}, name)
}

// readLayersFile reads the regular file at name inside the merged view of
// l as if it were "/": absolute symlinks restart at the top and ".." never
// climbs above it, so an image cannot make us read a host file. Each step
// works on the file descriptors of the directories resolved so far and
// never follows a link the kernel would resolve for us, so renaming things
// under a layer while we walk cannot redirect the walk out of it either.
func readLayersFile(l RootfsLayers, name string) ([]byte, error) {
	f, err := openInLayers(l, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRootfsFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s in rootfs: %w", name, err)
	}
	if len(b) > maxRootfsFile {
		return nil, fmt.Errorf("%s in rootfs is larger than %d bytes", name, maxRootfsFile)
	}
	return b, nil
}

// mergedDir is one directory of the merged view: the O_PATH descriptors of
// that directory in each layer that contributes to it, top first.
type mergedDir []int

func (d mergedDir) close() {
	for _, fd := range d {
		unix.Close(fd)
	}
}

func openInLayers(l RootfsLayers, name string) (_ *os.File, retErr error) {
	pathErr := func(err error) error { return &os.PathError{Op: "open in rootfs", Path: name, Err: err} }
	if len(l.Dirs) == 0 || (!l.Overlay && len(l.Dirs) != 1) {
		return nil, pathErr(unix.EINVAL)
	}
	openRoot := func() (mergedDir, error) {
		var root mergedDir
		for _, dir := range l.Dirs {
			fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				root.close()
				return nil, &os.PathError{Op: "open rootfs", Path: dir, Err: err}
			}
			root = append(root, fd)
		}
		return root, nil
	}
	root, err := openRoot()
	if err != nil {
		return nil, err
	}
	// dirs is the chain of merged directories from the root to where the
	// walk is; its first element is the root, so ".." can pop at most to it.
	dirs := []mergedDir{root}
	defer func() {
		for _, d := range dirs {
			d.close()
		}
	}()
	parts := strings.Split(name, "/")
	links := 0
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		switch p {
		case "", ".":
			continue
		case "..":
			if len(dirs) > 1 {
				dirs[len(dirs)-1].close()
				dirs = dirs[:len(dirs)-1]
			}
			continue
		}
		cur := dirs[len(dirs)-1]
		e, err := lookupMerged(l, cur, p)
		if err != nil {
			if errors.Is(err, errLayoutUnsupported) {
				return nil, err
			}
			return nil, pathErr(err)
		}
		switch e.mode {
		case unix.S_IFLNK:
			links++
			target, err := readlinkFD(e.fd)
			unix.Close(e.fd)
			if err != nil {
				return nil, pathErr(err)
			}
			if links > maxSymlinks {
				return nil, pathErr(unix.ELOOP)
			}
			if strings.HasPrefix(target, "/") {
				for _, d := range dirs[1:] {
					d.close()
				}
				dirs = dirs[:1]
			}
			parts = append(strings.Split(target, "/"), parts...)
		case unix.S_IFDIR:
			dirs = append(dirs, e.dir)
		case unix.S_IFREG:
			unix.Close(e.fd)
			if hasMoreComponents(parts) {
				return nil, pathErr(unix.ENOTDIR)
			}
			// O_NOFOLLOW: if p was swapped for a symlink since the
			// stat, fail instead of following it. O_NONBLOCK: if it
			// was swapped for a FIFO, do not hang (rechecked below).
			rfd, err := unix.Openat(e.parent, p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, pathErr(err)
			}
			var st unix.Stat_t
			if err := unix.Fstat(rfd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				unix.Close(rfd)
				return nil, pathErr(unix.EINVAL)
			}
			return os.NewFile(uintptr(rfd), name), nil
		default:
			// Devices, FIFOs and sockets are never configuration files;
			// reading /dev/zero or a FIFO would hang us.
			unix.Close(e.fd)
			return nil, pathErr(unix.EINVAL)
		}
	}
	return nil, pathErr(unix.EISDIR)
}

// entry is what a name resolves to in a merged directory: a directory
// (dir, owned by the caller) or anything else (fd, an O_PATH descriptor
// owned by the caller, found in the layer whose directory is parent).
type entry struct {
	mode   uint32
	dir    mergedDir
	fd     int
	parent int
}

// lookupMerged resolves p in cur with overlay's rules: the topmost layer
// holding p decides what it is; a whiteout there means it does not exist;
// a directory merges with the same directory in the layers below, down to
// an opaque one or to anything that is not a directory.
func lookupMerged(l RootfsLayers, cur mergedDir, p string) (entry, error) {
	var dirs mergedDir
	for _, dfd := range cur {
		fd, err := unix.Openat(dfd, p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			dirs.close()
			return entry{}, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			dirs.close()
			return entry{}, err
		}
		mode := st.Mode & unix.S_IFMT
		if l.Overlay && mode == unix.S_IFCHR && st.Rdev == 0 {
			unix.Close(fd) // a whiteout: p is gone from here down
			break
		}
		if mode != unix.S_IFDIR {
			if len(dirs) > 0 {
				unix.Close(fd) // hidden by the directory above, and hides the rest
				break
			}
			if l.Overlay && mode == unix.S_IFREG {
				// A metacopy file's data lives in another layer, found
				// through a redirect: leave that to the kernel.
				if has, err := l.hasXattr(fd, "metacopy"); err != nil || has {
					unix.Close(fd)
					return entry{}, errors.Join(errLayoutUnsupported, err)
				}
			}
			return entry{mode: mode, fd: fd, parent: dfd}, nil
		}
		dirs = append(dirs, fd)
		if !l.Overlay {
			break
		}
		if has, err := l.hasXattr(fd, "redirect"); err != nil || has {
			dirs.close()
			return entry{}, errors.Join(errLayoutUnsupported, err)
		}
		opaque, _, err := l.xattr(fd, "opaque")
		if err != nil {
			dirs.close()
			return entry{}, errors.Join(errLayoutUnsupported, err)
		}
		if opaque == "y" {
			break
		}
	}
	if len(dirs) == 0 {
		return entry{}, unix.ENOENT
	}
	return entry{mode: unix.S_IFDIR, dir: dirs}, nil
}

// xattr reads overlay's xattr name ("opaque", "redirect", ...) of the file
// opened with O_PATH as fd; present says whether it has one at all (an
// empty value counts: metacopy's usually is).
func (l RootfsLayers) xattr(fd int, name string) (value string, present bool, err error) {
	prefix := "trusted.overlay."
	if l.UserXattr {
		prefix = "user.overlay."
	}
	// getxattr through /proc follows the descriptor's magic link to the
	// very file it names; fgetxattr refuses O_PATH descriptors.
	path := "/proc/self/fd/" + strconv.Itoa(fd)
	buf := make([]byte, 256)
	n, err := unix.Getxattr(path, prefix+name, buf)
	switch {
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
		return "", false, nil
	case errors.Is(err, unix.ERANGE):
		return "", true, nil // longer than any value we act on
	case err != nil:
		return "", false, fmt.Errorf("read xattr %s%s: %w", prefix, name, err)
	}
	return string(buf[:n]), true, nil
}

func (l RootfsLayers) hasXattr(fd int, name string) (bool, error) {
	_, present, err := l.xattr(fd, name)
	return present, err
}

func hasMoreComponents(parts []string) bool {
	for _, p := range parts {
		if p != "" && p != "." {
			return true
		}
	}
	return false
}

// readlinkFD reads the target of the symlink opened with O_PATH as fd.
func readlinkFD(fd int) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= unix.PathMax {
			return "", unix.ENAMETOOLONG
		}
		buf = make([]byte, len(buf)*2)
	}
}
