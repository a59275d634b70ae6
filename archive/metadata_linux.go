package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-containers/berth/pkg/log"
	"golang.org/x/sys/unix"
)

const paxXattrPrefix = "SCHILY.xattr."

// fdMetadata sets owner, mode and xattrs of a regular file or directory open
// as fd. Owner first: chown clears the setuid and setgid bits chmod sets.
func (a *applier) fdMetadata(fd int, hdr *tar.Header) error {
	if a.chown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if err := unix.Fchmod(fd, tarMode(hdr)); err != nil {
		return fmt.Errorf("chmod %o: %w", tarMode(hdr), err)
	}
	return a.xattrs(hdr, func(name string, value []byte) error {
		return unix.Fsetxattr(fd, name, value, 0)
	})
}

// pathMetadata sets owner, mode (unless a symlink), xattrs and times of the
// entry base in pfd without following it if it is a symlink.
func (a *applier) pathMetadata(pfd int, base string, hdr *tar.Header, isSymlink bool) error {
	if a.chown {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if !isSymlink {
		if err := chmodAt(pfd, base, tarMode(hdr)); err != nil {
			return fmt.Errorf("chmod %o: %w", tarMode(hdr), err)
		}
	}
	// Device nodes and FIFOs cannot be opened to use fsetxattr (a FIFO
	// would block), so xattrs go through the parent's descriptor in
	// /proc; lsetxattr does not follow the last component.
	p := procPath(pfd, base)
	if err := a.xattrs(hdr, func(name string, value []byte) error {
		return unix.Lsetxattr(p, name, value, 0)
	}); err != nil {
		return err
	}
	return setTimes(pfd, base, atime(hdr), hdr.ModTime)
}

// chmodAt changes the mode of base in pfd without following a symlink:
// fchmodat2(AT_SYMLINK_NOFOLLOW) where the kernel has it (6.6+), else
// through an O_PATH descriptor of the node itself.
func chmodAt(pfd int, base string, mode uint32) error {
	err := unix.Fchmodat(pfd, base, mode, unix.AT_SYMLINK_NOFOLLOW)
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.ELOOP
	}
	return unix.Chmod(procPath(fd, ""), mode)
}

// procPath names base in the directory open as fd (or fd itself when base
// is empty) through /proc/self/fd, a path the kernel resolves to exactly
// that directory wherever it is.
func procPath(fd int, base string) string {
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	if base != "" {
		p += "/" + base
	}
	return p
}

// xattrs sets the entry's PAX xattrs with set, in name order.
func (a *applier) xattrs(hdr *tar.Header, set func(name string, value []byte) error) error {
	var names []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattrPrefix) {
			names = append(names, k[len(paxXattrPrefix):])
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasPrefix(name, "trusted.overlay.") {
			// overlayfs reads these (opaque, redirect, metacopy) from
			// upper directories; a layer states deletions with whiteout
			// entries, never with these.
			log.G(a.ctx).WithField("entry", hdr.Name).WithField("xattr", name).Debug("apply layer: dropping overlay xattr")
			continue
		}
		err := set(name, []byte(hdr.PAXRecords[paxXattrPrefix+name]))
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOTSUP),
			strings.HasPrefix(name, "security.") && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL)):
			log.G(a.ctx).WithError(err).WithField("entry", hdr.Name).WithField("xattr", name).Debug("apply layer: skipping unsupported xattr")
		default:
			return fmt.Errorf("set xattr %q: %w", name, err)
		}
	}
	return nil
}

func tarMode(hdr *tar.Header) uint32 { return uint32(hdr.Mode) & 0o7777 }

func atime(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// setTimes sets atime and mtime of base in pfd, not following a symlink.
func setTimes(pfd int, base string, at, mt time.Time) error {
	ts := []unix.Timespec{timespec(at), timespec(mt)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func isNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)
}
