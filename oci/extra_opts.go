package oci

// Spec options behind ctr's less common container flags: host devices,
// CFS quota and period, joining existing namespaces, a seccomp profile
// from a file and the root file system's mount propagation.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-containers/berth/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNotADevice is returned for a path that is not a block or character
// device (or FIFO).
var ErrNotADevice = errors.New("not a device node")

// DeviceFromPath describes the device node at path (not following a final
// symlink) as a spec device with the same path.
func DeviceFromPath(path string) (*specs.LinuxDevice, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	var typ string
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		typ = "b"
	case syscall.S_IFCHR:
		typ = "c"
	case syscall.S_IFIFO:
		typ = "p"
	default:
		return nil, fmt.Errorf("device %s: %w", path, ErrNotADevice)
	}
	rdev := uint64(st.Rdev) //nolint:unconvert // 32-bit on some arches
	// glibc's gnu_dev_major/minor encoding.
	major := int64((rdev>>8)&0xfff | (rdev>>32)&^0xfff)
	minor := int64(rdev&0xff | (rdev>>12)&^0xff)
	mode := os.FileMode(st.Mode &^ syscall.S_IFMT)
	uid, gid := st.Uid, st.Gid
	return &specs.LinuxDevice{
		Path: path, Type: typ, Major: major, Minor: minor,
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}

// skippedDeviceDirs are the folders of /dev that hold no devices to pass
// on (or hold the container's own ones).
var skippedDeviceDirs = map[string]bool{
	"pts": true, "shm": true, "fd": true, "mqueue": true,
	".lxc": true, ".lxd-mounts": true, ".udev": true,
}

// hostDevices lists the device nodes at hostPath: the node itself, or for
// a directory every block and character device below it (FIFOs, other
// files, "console" and skippedDeviceDirs are left out). containerPath,
// when set, replaces hostPath as the prefix of the paths in the container.
func hostDevices(hostPath, containerPath string) ([]specs.LinuxDevice, error) {
	fi, err := os.Stat(hostPath)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", hostPath, err)
	}
	if !fi.IsDir() {
		dev, err := DeviceFromPath(hostPath)
		if err != nil {
			return nil, err
		}
		if dev.Type == "p" {
			return nil, fmt.Errorf("device %s is a FIFO: %w", hostPath, errdefs.ErrInvalidArgument)
		}
		if containerPath != "" {
			dev.Path = containerPath
		}
		return []specs.LinuxDevice{*dev}, nil
	}
	entries, err := os.ReadDir(hostPath)
	if err != nil {
		return nil, fmt.Errorf("device dir %s: %w", hostPath, err)
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		name := e.Name()
		var sub string
		if containerPath != "" {
			sub = filepath.Join(containerPath, name)
		}
		p := filepath.Join(hostPath, name)
		switch {
		case e.IsDir():
			if skippedDeviceDirs[name] {
				continue
			}
			devs, err := hostDevices(p, sub)
			if err != nil {
				return nil, err
			}
			out = append(out, devs...)
		case name == "console":
		default:
			dev, err := DeviceFromPath(p)
			if errors.Is(err, ErrNotADevice) || errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if dev.Type == "p" {
				continue
			}
			if sub != "" {
				dev.Path = sub
			}
			out = append(out, *dev)
		}
	}
	return out, nil
}

// WithDevices adds the host device at hostPath (or every device under it,
// for a directory) to the container at containerPath (hostPath when
// empty), with a device cgroup rule allowing permissions (a combination
// of r, w and m) on each. A device already in the spec at the same path
// is replaced.
func WithDevices(hostPath, containerPath, permissions string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if err := validDeviceAccess(permissions); err != nil {
			return err
		}
		if containerPath != "" && !filepath.IsAbs(containerPath) {
			return fmt.Errorf("device container path %q must be absolute: %w", containerPath, errdefs.ErrInvalidArgument)
		}
		devs, err := hostDevices(hostPath, containerPath)
		if err != nil {
			return err
		}
		ensureResources(s)
		for _, d := range devs {
			d := d
			replaced := false
			for i := range s.Linux.Devices {
				if s.Linux.Devices[i].Path == d.Path {
					s.Linux.Devices[i], replaced = d, true
				}
			}
			if !replaced {
				s.Linux.Devices = append(s.Linux.Devices, d)
			}
			major, minor := d.Major, d.Minor
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
				Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: permissions,
			})
		}
		return nil
	}
}

func validDeviceAccess(a string) error {
	seen := map[rune]bool{}
	for _, r := range a {
		if (r != 'r' && r != 'w' && r != 'm') || seen[r] {
			a = "" // fall through to the error
			break
		}
		seen[r] = true
	}
	if a == "" {
		return fmt.Errorf("device permissions must be a combination of r, w and m: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// WithCPUCFS sets the CFS quota and period (microseconds). A quota of -1
// is no limit; a period of 0 leaves the runtime's default (100ms).
func WithCPUCFS(quota int64, period uint64) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if quota != -1 && quota < 1000 {
			return fmt.Errorf("cpu quota %d must be -1 (unlimited) or at least 1000 microseconds: %w", quota, errdefs.ErrInvalidArgument)
		}
		if period != 0 && (period < 1000 || period > 1000000) {
			return fmt.Errorf("cpu period %d must be within [1000, 1000000] microseconds: %w", period, errdefs.ErrInvalidArgument)
		}
		ensureResources(s)
		if s.Linux.Resources.CPU == nil {
			s.Linux.Resources.CPU = &specs.LinuxCPU{}
		}
		q := quota
		s.Linux.Resources.CPU.Quota = &q
		if period != 0 {
			p := period
			s.Linux.Resources.CPU.Period = &p
		} else {
			s.Linux.Resources.CPU.Period = nil
		}
		return nil
	}
}

// JoinableNamespace reports whether typ names a namespace a container may
// join by path (containerd's list: pid, network, mount, uts, ipc, user,
// cgroup).
func JoinableNamespace(typ specs.LinuxNamespaceType) bool {
	switch typ {
	case specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace,
		specs.UTSNamespace, specs.IPCNamespace, specs.UserNamespace,
		specs.CgroupNamespace:
		return true
	}
	return false
}

// WithNamespacePath makes the container join the existing namespace of
// type typ at path (e.g. network, /proc/PID/ns/net) instead of getting a
// new one.
func WithNamespacePath(typ specs.LinuxNamespaceType, path string) SpecOpts {
	return func(ctx context.Context, c *ContainerInfo, s *specs.Spec) error {
		if !JoinableNamespace(typ) {
			return fmt.Errorf("namespace type %q is not one of pid, network, mount, uts, ipc, user, cgroup: %w", typ, errdefs.ErrInvalidArgument)
		}
		if !filepath.IsAbs(path) {
			return fmt.Errorf("%s namespace path %q must be absolute: %w", typ, path, errdefs.ErrInvalidArgument)
		}
		return WithLinuxNamespace(specs.LinuxNamespace{Type: typ, Path: path})(ctx, c, s)
	}
}

// WithSeccompProfile loads the seccomp profile in the OCI JSON form
// (linux.seccomp of a runtime spec) from the file at path.
func WithSeccompProfile(path string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("seccomp profile: %w", err)
		}
		var p specs.LinuxSeccomp
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("seccomp profile %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
		}
		if p.DefaultAction == "" {
			return fmt.Errorf("seccomp profile %s has no defaultAction: %w", path, errdefs.ErrInvalidArgument)
		}
		ensureLinux(s)
		s.Linux.Seccomp = &p
		return nil
	}
}

// rootfsPropagations are the values runc accepts for linux.rootfsPropagation.
var rootfsPropagations = map[string]bool{
	"shared": true, "rshared": true, "slave": true, "rslave": true,
	"private": true, "rprivate": true, "unbindable": true, "runbindable": true,
}

// WithRootfsPropagation sets the mount propagation of the container's
// root file system (shared, rshared, slave, rslave, private, rprivate,
// unbindable, runbindable).
func WithRootfsPropagation(p string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if !rootfsPropagations[p] {
			return fmt.Errorf("rootfs propagation %q must be one of shared, rshared, slave, rslave, private, rprivate, unbindable, runbindable: %w", p, errdefs.ErrInvalidArgument)
		}
		ensureLinux(s)
		s.Linux.RootfsPropagation = p
		return nil
	}
}

// KnownCapability reports whether name (e.g. "CAP_NET_ADMIN") is a Linux
// capability this package knows.
func KnownCapability(name string) bool {
	return contains(knownCaps, name)
}

// WithRdt puts the container in the Intel RDT (resctrl) class of service
// closID, as containerd's ctr --rdt-class does. The class is a directory
// under /sys/fs/resctrl that runc creates or joins, so it must be one
// plain path element; a host without resctrl fails at task create, in runc.
func WithRdt(closID string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if closID == "" || closID == "." || closID == ".." || strings.ContainsAny(closID, "/\x00\n") || len(closID) > 255 {
			return fmt.Errorf("rdt class %q must be a single path element: %w", closID, errdefs.ErrInvalidArgument)
		}
		ensureLinux(s)
		if s.Linux.IntelRdt == nil {
			s.Linux.IntelRdt = &specs.LinuxIntelRdt{}
		}
		s.Linux.IntelRdt.ClosID = closID
		return nil
	}
}

// WithApparmorProfile runs the container's process under the AppArmor
// profile name, which must already be loaded on the host (containerd's
// ctr --apparmor-profile). runc applies it, and refuses it on a host
// without AppArmor.
func WithApparmorProfile(name string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		// runc writes "exec NAME" to the process's AppArmor attribute: a
		// NUL or newline would cut or extend that command.
		if name == "" || strings.ContainsAny(name, "\x00\n") || len(name) > 4096 {
			return fmt.Errorf("apparmor profile %q: not a profile name: %w", name, errdefs.ErrInvalidArgument)
		}
		ensureProcess(s)
		s.Process.ApparmorProfile = name
		return nil
	}
}
