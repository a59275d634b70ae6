package mount

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	"golang.org/x/sys/unix"
)

// All mounts each of mounts in order, m.Target being relative to target.
// If one fails, those already mounted are unmounted again, so the caller
// never has to clean up after a partial All.
func All(mounts []Mount, target string) error {
	for i, m := range mounts {
		dest, err := joinTarget(target, m.Target)
		if err != nil {
			unmountDone(mounts[:i], target)
			return err
		}
		if err := m.Mount(dest); err != nil {
			unmountDone(mounts[:i], target)
			return err
		}
	}
	return nil
}

// unmountDone undoes the first mounts of a failed All, last first.
func unmountDone(done []Mount, target string) {
	for i := len(done) - 1; i >= 0; i-- {
		if dest, err := joinTarget(target, done[i].Target); err == nil {
			UnmountAll(dest, unix.MNT_DETACH)
		}
	}
}

// joinTarget puts a mount's relative Target under root, refusing targets
// that climb out of root.
func joinTarget(root, target string) (string, error) {
	if target == "" {
		return root, nil
	}
	if strings.Contains(target, "\x00") {
		return "", fmt.Errorf("mount target %q: NUL in path: %w", target, errdefs.ErrInvalidArgument)
	}
	for _, part := range strings.Split(target, "/") {
		if part == ".." {
			return "", fmt.Errorf("mount target %q: must not contain \"..\": %w", target, errdefs.ErrInvalidArgument)
		}
	}
	return filepath.Join(root, filepath.Clean("/"+target)), nil
}

// Mount mounts m at target (an absolute path; m.Target is not used).
func (m *Mount) Mount(target string) error {
	if strings.Contains(target, "\x00") || strings.Contains(m.Source, "\x00") {
		return fmt.Errorf("mount %s on %q: NUL in path: %w", m.Type, target, errdefs.ErrInvalidArgument)
	}
	opts := parseOptions(m.Options)
	if m.Type == "bind" || m.Type == "rbind" {
		// A bind mount's type is only a name; the flag does the work.
		opts.flags |= unix.MS_BIND
		if m.Type == "rbind" {
			opts.flags |= unix.MS_REC
		}
	}
	rest, uid, gid, idmapped, err := takeIDMaps(opts.data)
	if err != nil {
		return fmt.Errorf("mount %s on %q: %w", m.Type, target, err)
	}
	opts.data = rest
	data := strings.Join(opts.data, ",")
	if idmapped {
		if err := mountIDMapped(m, target, opts, uid, gid); err != nil {
			return err
		}
	} else if m.Type == "overlay" && len(data) >= pageSize() {
		if err := mountOverlayCompact(m.Source, target, opts.flags, opts.data); err != nil {
			return err
		}
	} else if err := mountSyscall(m.Source, target, m.Type, opts.flags, data); err != nil {
		return err
	}
	if err := remountBind(m, target, opts.flags); err != nil {
		unix.Unmount(target, unix.MNT_DETACH)
		return err
	}
	if opts.propagation != 0 {
		if err := unix.Mount("", target, "", opts.propagation, ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("mount %s on %q: set propagation: %w", m.Type, target, err)
		}
	}
	return nil
}

// mountSyscall is mount(2) with an error naming the step.
func mountSyscall(source, target, fstype string, flags uintptr, data string) error {
	typ := fstype
	if flags&unix.MS_BIND != 0 && flags&unix.MS_REMOUNT == 0 {
		fstype = "" // ignored by the kernel for binds; keep it out of errors
	}
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &Error{Op: "mount", Type: typ, Source: source, Target: target, Options: data, Err: err}
	}
	return nil
}

// remountBind applies read-only and the other per-mount flags to a new bind
// mount: the kernel ignores them on the MS_BIND call itself.
func remountBind(m *Mount, target string, flags uintptr) error {
	const perMount = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
		unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME
	if flags&unix.MS_BIND == 0 || flags&unix.MS_REMOUNT != 0 || flags&perMount == 0 {
		return nil
	}
	remount := unix.MS_REMOUNT | unix.MS_BIND | flags&perMount
	if err := unix.Mount("", target, "", remount, ""); err != nil {
		return &Error{Op: "remount bind", Type: m.Type, Source: m.Source, Target: target, Err: err}
	}
	return nil
}

// Error says which mount step failed on what.
type Error struct {
	Op      string
	Type    string
	Source  string
	Target  string
	Options string
	Err     error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s %q on %q", e.Op, e.Type, e.Source, e.Target)
	if e.Options != "" {
		s += fmt.Sprintf(" (options %q)", e.Options)
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// IsNotMounted reports errors meaning the target was not a mount point.
func isNotMounted(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT)
}
