package mount

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-containers/berth/pkg/errdefs"
	"golang.org/x/sys/unix"
)

// The options "uidmap=C:H:S" and "gidmap=C:H:S" (containerd 2's names) ask
// for an idmapped mount: files owned by host id H+n appear owned by C+n, as
// a container in a user namespace with that mapping needs its root file
// system to look. The overlay snapshotter sets them for a snapshot labelled
// containerd.io/snapshot/uidmapping and gidmapping. Overlay mounts get each
// lower layer idmapped (the upper dir belongs to the mapped ids already);
// bind mounts get the bound tree idmapped.
const (
	uidmapOption = "uidmap="
	gidmapOption = "gidmap="
)

// IDMap is one id mapping, as uid_map reads it: container id, host id, size.
type IDMap struct {
	ContainerID, HostID, Size uint32
}

// ParseIDMap reads "C:H:S"; the range must not wrap on either side and
// has at least one id.
func ParseIDMap(s string) (IDMap, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return IDMap{}, fmt.Errorf("id mapping %q: want container-id:host-id:size: %w", s, errdefs.ErrInvalidArgument)
	}
	var v [3]uint32
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return IDMap{}, fmt.Errorf("id mapping %q: %q is not a 32-bit id: %w", s, p, errdefs.ErrInvalidArgument)
		}
		v[i] = uint32(n)
	}
	m := IDMap{ContainerID: v[0], HostID: v[1], Size: v[2]}
	if m.Size == 0 || uint64(m.ContainerID)+uint64(m.Size) > 1<<32 || uint64(m.HostID)+uint64(m.Size) > 1<<32 {
		return IDMap{}, fmt.Errorf("id mapping %q: empty or out of the 32-bit range: %w", s, errdefs.ErrInvalidArgument)
	}
	return m, nil
}

func (m IDMap) String() string {
	return fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size)
}

// takeIDMaps removes the idmap options from data; ok is false when there
// are none. Both or neither must be given.
func takeIDMaps(data []string) (rest []string, uid, gid IDMap, ok bool, err error) {
	var us, gs string
	for _, o := range data {
		switch {
		case strings.HasPrefix(o, uidmapOption):
			us = strings.TrimPrefix(o, uidmapOption)
		case strings.HasPrefix(o, gidmapOption):
			gs = strings.TrimPrefix(o, gidmapOption)
		default:
			rest = append(rest, o)
		}
	}
	if us == "" && gs == "" {
		return data, IDMap{}, IDMap{}, false, nil
	}
	if us == "" || gs == "" {
		return nil, IDMap{}, IDMap{}, false, fmt.Errorf("idmapped mount: uidmap and gidmap must be given together: %w", errdefs.ErrInvalidArgument)
	}
	if uid, err = ParseIDMap(us); err != nil {
		return nil, IDMap{}, IDMap{}, false, err
	}
	if gid, err = ParseIDMap(gs); err != nil {
		return nil, IDMap{}, IDMap{}, false, err
	}
	return rest, uid, gid, true, nil
}

// userNamespace returns an fd of a new user namespace with the mappings.
// A user namespace needs a process: a child of ours is started in a new
// one, stopped by ptrace at its exec before it runs any code (so nothing
// needs to be exec'd for it), and killed once its namespace is open.
func userNamespace(uid, gid IDMap) (int, error) {
	// The tracer of a ptraced child is the thread that forked it; the
	// child is only killed and reaped, but keep that thread ours anyway.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"berth-idmap-userns"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{
			Cloneflags:  unix.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: int(uid.ContainerID), HostID: int(uid.HostID), Size: int(uid.Size)}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: int(gid.ContainerID), HostID: int(gid.HostID), Size: int(gid.Size)}},
			Ptrace:      true,
			Pdeathsig:   syscall.SIGKILL,
		},
	})
	if err != nil {
		return -1, fmt.Errorf("create user namespace: %w", err)
	}
	defer func() {
		unix.Kill(pid, unix.SIGKILL)
		// A shim's reaper may reap it first; either way it is gone.
		unix.Wait4(pid, nil, 0, nil)
	}()
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open user namespace: %w", err)
	}
	return fd, nil
}

// idmappedTree clones the tree at path (recursively with rec) as a
// detached mount idmapped through the user namespace userns, read-only
// with ro. The caller closes the returned fd.
func idmappedTree(path string, userns int, rec, ro bool) (int, error) {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	if rec {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, path, uint(flags))
	if err != nil {
		return -1, &Error{Op: "open_tree", Type: "idmap", Source: path, Err: err}
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns)}
	if ro {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	setFlags := unix.AT_EMPTY_PATH
	if rec {
		setFlags |= unix.AT_RECURSIVE
	}
	if err := unix.MountSetattr(tree, "", uint(setFlags), &attr); err != nil {
		unix.Close(tree)
		return -1, &Error{Op: "mount_setattr", Type: "idmap", Source: path, Err: err}
	}
	return tree, nil
}

// mountIDMapped performs an idmapped overlay or bind mount of m at target;
// data is the file system options without the idmap ones.
func mountIDMapped(m *Mount, target string, opts parsedOptions, uid, gid IDMap) error {
	userns, err := userNamespace(uid, gid)
	if err != nil {
		return fmt.Errorf("mount %s on %q: %w", m.Type, target, err)
	}
	defer unix.Close(userns)
	switch {
	case opts.flags&unix.MS_BIND != 0:
		tree, err := idmappedTree(m.Source, userns, opts.flags&unix.MS_REC != 0, opts.flags&unix.MS_RDONLY != 0)
		if err != nil {
			return err
		}
		defer unix.Close(tree)
		if err := unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return &Error{Op: "move_mount", Type: m.Type, Source: m.Source, Target: target, Err: err}
		}
		return nil
	case m.Type == "overlay":
		// Each lower layer becomes an idmapped detached mount, handed to
		// overlay by its /proc/self/fd path; overlay keeps what it needs
		// and the detached mounts go with their fds.
		data := append([]string(nil), opts.data...)
		found := false
		for i, o := range data {
			if !strings.HasPrefix(o, "lowerdir=") {
				continue
			}
			found = true
			lowers := strings.Split(strings.TrimPrefix(o, "lowerdir="), ":")
			for j, l := range lowers {
				tree, err := idmappedTree(l, userns, false, true)
				if err != nil {
					return err
				}
				defer unix.Close(tree)
				lowers[j] = "/proc/self/fd/" + strconv.Itoa(tree)
			}
			data[i] = "lowerdir=" + strings.Join(lowers, ":")
		}
		if !found {
			return fmt.Errorf("mount overlay on %q: idmapped without a lowerdir: %w", target, errdefs.ErrInvalidArgument)
		}
		return mountSyscall(m.Source, target, m.Type, opts.flags, strings.Join(data, ","))
	default:
		return fmt.Errorf("mount %s on %q: idmapping is only for overlay and bind mounts: %w", m.Type, target, errdefs.ErrNotImplemented)
	}
}
