package archive

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	"golang.org/x/sys/unix"
)

// whiteout applies the whiteout entry base (".wh.NAME" or ".wh..wh..opq")
// found in directory dir.
func (a *applier) whiteout(dir, base string) error {
	a.dropParent() // a removal may change what a cached path names
	if base == whiteoutOpaque {
		if a.opts.whiteouts == WhiteoutOverlay {
			return a.overlayOpaque(dir)
		}
		return a.removeOpaque(dir)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		// Other ".wh..wh." names are AUFS bookkeeping (.wh..wh.plnk,
		// .wh..wh.aufs); they describe nothing in the image.
		return nil
	}
	name := base[len(whiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("whiteout names %q: %w", name, errdefs.ErrInvalidArgument)
	}
	if a.opts.whiteouts == WhiteoutOverlay {
		return a.overlayWhiteout(dir, name)
	}
	pfd, _, err := a.root.openDir(dir, false)
	if err != nil {
		if isNotExist(err) {
			return nil // nothing there to hide
		}
		return fmt.Errorf("open whiteout directory: %w", err)
	}
	defer a.root.release(pfd)
	if err := removeAt(pfd, name); err != nil {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	return nil
}

// removeOpaque empties dir of everything earlier layers put there, keeping
// what this layer created before the marker (and, inside directories it
// created or restated, their earlier contents are still removed).
func (a *applier) removeOpaque(dir string) error {
	fd, canon, err := a.root.openDir(dir, false)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("open opaque directory: %w", err)
	}
	defer a.root.release(fd)
	if err := a.pruneDir(fd, canon); err != nil {
		return fmt.Errorf("empty opaque directory: %w", err)
	}
	return nil
}

// pruneDir removes the children of the directory fd (canonical path canon)
// that this layer did not create, descending into those it did.
func (a *applier) pruneDir(fd int, canon string) error {
	names, err := readDirNames(fd)
	if err != nil {
		return err
	}
	for _, name := range names {
		child := joinName(canon, name)
		if _, ok := a.unpacked[child]; !ok {
			if err := removeAt(fd, name); err != nil {
				return fmt.Errorf("remove %q: %w", child, err)
			}
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat %q: %w", child, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		cfd, err := unix.Openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %q: %w", child, err)
		}
		err = a.pruneDir(cfd, child)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// overlayWhiteout writes the overlayfs whiteout for name in dir: a 0/0
// character device, replacing whatever the upper directory holds there.
func (a *applier) overlayWhiteout(dir, name string) error {
	pfd, _, err := a.root.openDir(dir, true)
	if err != nil {
		return fmt.Errorf("open whiteout directory: %w", err)
	}
	defer a.root.release(pfd)
	err = unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
	if errors.Is(err, unix.EEXIST) {
		if err = replace(pfd, name); err != nil {
			return err
		}
		err = unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
	}
	if err != nil {
		return fmt.Errorf("create whiteout device for %q: %w", name, err)
	}
	if a.chown {
		if err := unix.Fchownat(pfd, name, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown whiteout device for %q: %w", name, err)
		}
	}
	return nil
}

// overlayOpaque marks dir opaque for overlayfs.
func (a *applier) overlayOpaque(dir string) error {
	pfd, _, err := a.root.openDir(dir, true)
	if err != nil {
		return fmt.Errorf("open opaque directory: %w", err)
	}
	defer a.root.release(pfd)
	// openDir returned an O_PATH descriptor; xattrs need a real one.
	fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open opaque directory: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Fsetxattr(fd, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		return fmt.Errorf("set trusted.overlay.opaque: %w", err)
	}
	return nil
}

// readDirNames lists the directory fd (which may be O_PATH) without moving
// or closing fd.
func readDirNames(fd int) ([]string, error) {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dfd), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}
