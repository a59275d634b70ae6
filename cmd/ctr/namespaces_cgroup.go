package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-containers/berth/pkg/identifiers"
	"golang.org/x/sys/unix"
)

// removeNamespaceCgroup removes the cgroup /<ns> that tasks of namespace
// ns were created under (cgroupsPath /<ns>/<id>), in every cgroup
// hierarchy mounted here: each v1 controller, and the v2 one whether it is
// the only hierarchy or mounted beside v1. The runtimes remove each task's
// own cgroup but leave the namespace's. Like containerd's `ctr ns rm
// --cgroup`, this runs where ctr runs, and a cgroup that still has tasks
// or children is not removed (rmdir refuses it).
func removeNamespaceCgroup(ns string) error {
	// A valid namespace name has no "/" or "..": the path stays at the
	// top of each hierarchy.
	if err := identifiers.Validate(ns); err != nil {
		return err
	}
	mounts, err := cgroupMounts("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		dir := filepath.Join(m, ns)
		if err := unix.Rmdir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

// cgroupMounts lists the mount points of cgroup and cgroup2 file systems
// in a mountinfo file, each once.
func cgroupMounts(mountinfo string) ([]string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	var mounts []string
	seen := map[string]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(s.Text())
		for i := 5; i+1 < len(fields); i++ {
			if fields[i] != "-" {
				continue
			}
			if t := fields[i+1]; (t == "cgroup" || t == "cgroup2") && !seen[fields[4]] {
				seen[fields[4]] = true
				mounts = append(mounts, unescapeMountinfo(fields[4]))
			}
			break
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space,
// \011, \012, \134) in a path.
func unescapeMountinfo(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+4 <= len(p) && isOctal(p[i+1:i+4]) {
			b.WriteByte((p[i+1]-'0')<<6 | (p[i+2]-'0')<<3 | (p[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return s[0] <= '3'
}
