// Package stats reads a container's cgroup counters straight from the
// cgroup file system (no runc events --stats round trip) and returns them
// as the metrics messages containerd's clients decode:
// io.containerd.cgroups.v1.Metrics on cgroup v1 (hybrid hosts included),
// io.containerd.cgroups.v2.Metrics on a unified hierarchy.
package stats

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Root is where the cgroup file systems are mounted.
const Root = "/sys/fs/cgroup"

// Unified reports whether the host runs cgroup v2 only. A hybrid host
// (v1 controllers, v2 mounted beside them with none) counts as v1, as in
// runc and containerd.
func Unified() bool {
	var st unix.Statfs_t
	if err := unix.Statfs(Root, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

// Cgroup is one container's cgroup: on v1 a directory per controller, on v2
// one directory.
type Cgroup struct {
	// V1 maps a controller ("memory", "cpuacct", "pids", ...) to its
	// directory; nil on v2.
	V1 map[string]string
	// V2 is the unified directory; empty on v1.
	V2 string
}

// ForPid finds the cgroup of a running process (the container's init) from
// /proc/<pid>/cgroup. This is exact whatever cgroupsPath said: empty,
// relative, or a systemd slice:prefix:name.
func ForPid(pid int) (*Cgroup, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("cgroup of pid %d: process gone: %w", pid, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	defer f.Close()
	unified := Unified()
	var mounts map[string]string
	if !unified {
		if mounts, err = v1Mounts(); err != nil {
			return nil, err
		}
	}
	cg := &Cgroup{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if unified {
			if parts[0] == "0" {
				cg.V2 = filepath.Join(Root, parts[2])
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if m, ok := mounts[c]; ok {
				if cg.V1 == nil {
					cg.V1 = map[string]string{}
				}
				cg.V1[c] = filepath.Join(m, parts[2])
			}
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	if cg.V1 == nil && cg.V2 == "" {
		return nil, fmt.Errorf("cgroup of pid %d: none found: %w", pid, errdefs.ErrNotFound)
	}
	return cg, nil
}

// ForPath is the cgroup at an absolute cgroupfs path (linux.cgroupsPath of
// a spec that gives one), for when no process is left to ask.
func ForPath(path string) (*Cgroup, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("cgroup path %q is not absolute: %w", path, errdefs.ErrInvalidArgument)
	}
	if Unified() {
		return &Cgroup{V2: filepath.Join(Root, path)}, nil
	}
	mounts, err := v1Mounts()
	if err != nil {
		return nil, err
	}
	cg := &Cgroup{V1: map[string]string{}}
	for c, m := range mounts {
		cg.V1[c] = filepath.Join(m, path)
	}
	return cg, nil
}

// v1Mounts maps each v1 controller to its mount point, from mountinfo
// (controllers may share a mount: cpu,cpuacct).
func v1Mounts() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	mounts := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(s.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(fields) || fields[sep+1] != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(fields[sep+3], ",") {
			opt = strings.TrimPrefix(opt, "name=")
			if _, seen := mounts[opt]; !seen {
				mounts[opt] = fields[4]
			}
		}
	}
	return mounts, s.Err()
}

// Metrics reads the cgroup's counters.
func (c *Cgroup) Metrics() (proto.Message, error) {
	if c.V2 != "" {
		return c.v2Metrics()
	}
	return c.v1Metrics()
}
