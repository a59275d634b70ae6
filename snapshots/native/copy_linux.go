package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// copyTree copies the tree at src onto dst (an existing, empty directory)
// preserving what a layer carries: modes (setuid included), owners, xattrs
// (overlay opaque markers, capabilities), symlinks, hard links within the
// tree, device nodes, fifos, sockets, and access and modification times.
func copyTree(ctx context.Context, src, dst string) error {
	c := &copier{ctx: ctx, links: map[fileID]string{}}
	return c.copyDir(src, dst)
}

type fileID struct{ dev, ino uint64 }

type copier struct {
	ctx   context.Context
	links map[fileID]string // first copy of each multiply linked inode
}

func (c *copier) copyDir(src, dst string) error {
	st, err := lstat(src)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read directory %q: %w", src, err)
	}
	for _, e := range entries {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.copyEntry(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	// A directory's attributes last: writing its entries changed its times,
	// and a read-only mode would have stopped them.
	return copyAttrs(src, dst, st)
}

func (c *copier) copyEntry(src, dst string) error {
	st, err := lstat(src)
	if err != nil {
		return err
	}
	mode := st.Mode & unix.S_IFMT
	if mode != unix.S_IFDIR && st.Nlink > 1 {
		id := fileID{uint64(st.Dev), st.Ino}
		if first, ok := c.links[id]; ok {
			if err := os.Link(first, dst); err != nil {
				return fmt.Errorf("hard link %q: %w", dst, err)
			}
			return nil
		}
		c.links[id] = dst
	}
	switch mode {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("create directory %q: %w", dst, err)
		}
		return c.copyDir(src, dst)
	case unix.S_IFREG:
		if err := copyFile(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return fmt.Errorf("read link %q: %w", src, err)
		}
		if err := os.Symlink(target, dst); err != nil {
			return fmt.Errorf("create symlink %q: %w", dst, err)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		// Whiteouts are 0/0 character devices; they copy like any other.
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("create node %q: %w", dst, err)
		}
	default:
		return fmt.Errorf("copy %q: unknown file type %#o", src, mode)
	}
	return copyAttrs(src, dst, st)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %q: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %q: %w", dst, err)
	}
	// io.Copy between files uses copy_file_range, sharing extents where
	// the file system can (reflinks on xfs and btrfs).
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %q: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %q: %w", src, err)
	}
	return nil
}

// copyAttrs sets owner, then mode (chown clears setuid bits), then xattrs
// (chown clears security.capability), then times (everything else changed
// them).
func copyAttrs(src, dst string, st *unix.Stat_t) error {
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %q: %w", dst, err)
	}
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if !isLink {
		// The raw bits: os.Chmod would need setuid etc. as Go's FileMode.
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod %q: %w", dst, err)
		}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	times := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %q: %w", dst, err)
	}
	return nil
}

func copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		value, err := getXattr(src, name)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, value, 0); err != nil {
			return fmt.Errorf("set xattr %s on %q: %w", name, dst, err)
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Llistxattr(path, buf)
		switch {
		case errors.Is(err, unix.ERANGE):
			size, err := unix.Llistxattr(path, nil)
			if err != nil {
				return nil, fmt.Errorf("list xattrs of %q: %w", path, err)
			}
			buf = make([]byte, size)
			continue
		case errors.Is(err, unix.ENOTSUP):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("list xattrs of %q: %w", path, err)
		}
		var names []string
		for start := 0; start < n; {
			end := start
			for end < n && buf[end] != 0 {
				end++
			}
			if end > start {
				names = append(names, string(buf[start:end]))
			}
			start = end + 1
		}
		return names, nil
	}
}

func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			size, err := unix.Lgetxattr(path, name, nil)
			if err != nil {
				return nil, fmt.Errorf("get xattr %s of %q: %w", name, path, err)
			}
			buf = make([]byte, size)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get xattr %s of %q: %w", name, path, err)
		}
		return buf[:n], nil
	}
}

func lstat(path string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	return &st, nil
}
