package oci

import (
	"fmt"
	"io"
	"os"
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

// readRootfsFile reads the regular file at name inside root as if root were
// "/": absolute symlinks restart at root and ".." never climbs above it, so
// an image cannot make us read a host file. Each step works on the file
// descriptor of the directory resolved so far and never follows a link the
// kernel would resolve for us, so renaming things under root while we walk
// cannot redirect the walk out of it either.
func readRootfsFile(root, name string) ([]byte, error) {
	f, err := openInRoot(root, name)
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

func openInRoot(root, name string) (_ *os.File, retErr error) {
	pathErr := func(err error) error { return &os.PathError{Op: "open in rootfs", Path: name, Err: err} }

	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open rootfs", Path: root, Err: err}
	}
	// dirs is the chain of directories from root to where the walk is; its
	// first element is root itself, so ".." can pop at most to it.
	dirs := []int{rootFD}
	defer func() {
		for _, fd := range dirs {
			unix.Close(fd)
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
				unix.Close(dirs[len(dirs)-1])
				dirs = dirs[:len(dirs)-1]
			}
			continue
		}
		cur := dirs[len(dirs)-1]
		fd, err := unix.Openat(cur, p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, pathErr(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, pathErr(err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			links++
			target, err := readlinkFD(fd)
			unix.Close(fd)
			if err != nil {
				return nil, pathErr(err)
			}
			if links > maxSymlinks {
				return nil, pathErr(unix.ELOOP)
			}
			if strings.HasPrefix(target, "/") {
				for _, d := range dirs[1:] {
					unix.Close(d)
				}
				dirs = dirs[:1]
			}
			parts = append(strings.Split(target, "/"), parts...)
		case unix.S_IFDIR:
			dirs = append(dirs, fd)
		case unix.S_IFREG:
			unix.Close(fd)
			if hasMoreComponents(parts) {
				return nil, pathErr(unix.ENOTDIR)
			}
			// O_NOFOLLOW: if p was swapped for a symlink since the
			// stat, fail instead of following it. O_NONBLOCK: if it
			// was swapped for a FIFO, do not hang (rechecked below).
			rfd, err := unix.Openat(cur, p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, pathErr(err)
			}
			if err := unix.Fstat(rfd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				unix.Close(rfd)
				return nil, pathErr(unix.EINVAL)
			}
			return os.NewFile(uintptr(rfd), name), nil
		default:
			// Devices, FIFOs and sockets are never configuration files;
			// reading /dev/zero or a FIFO would hang us.
			unix.Close(fd)
			return nil, pathErr(unix.EINVAL)
		}
	}
	return nil, pathErr(unix.EISDIR)
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
