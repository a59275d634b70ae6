package preflight

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Cgroup layouts.
const (
	cgroupV1     = "v1"
	cgroupV2     = "v2"
	cgroupHybrid = "hybrid"
)

// wantControllers are the controllers whose absence makes resource limits
// silently not apply.
var wantControllers = []string{"cpu", "memory", "pids"}

// checkCgroups finds the cgroup layout mounted at mnt (normally
// /sys/fs/cgroup) and the controllers available to containers.
func checkCgroups(mnt, procCgroups string) Result {
	mode, controllers, err := detectCgroups(mnt, procCgroups)
	if err != nil {
		return result("cgroups", Fail, err.Error()+"; runc cannot create containers without cgroups", "no usable cgroup file system at %s", mnt)
	}
	return classifyCgroups(mnt, mode, controllers)
}

func detectCgroups(mnt, procCgroups string) (string, []string, error) {
	t, err := fsType(mnt)
	if err != nil {
		return "", nil, err
	}
	switch t {
	case unix.CGROUP2_SUPER_MAGIC:
		data, err := os.ReadFile(filepath.Join(mnt, "cgroup.controllers"))
		if err != nil {
			return "", nil, fmt.Errorf("read cgroup.controllers: %w", err)
		}
		return cgroupV2, strings.Fields(string(data)), nil
	case unix.TMPFS_MAGIC, unix.CGROUP_SUPER_MAGIC:
		data, err := os.ReadFile(procCgroups)
		if err != nil {
			return "", nil, fmt.Errorf("read %s: %w", procCgroups, err)
		}
		mode := cgroupV1
		if ut, err := fsType(filepath.Join(mnt, "unified")); err == nil && ut == unix.CGROUP2_SUPER_MAGIC {
			mode = cgroupHybrid
		}
		return mode, parseProcCgroups(string(data)), nil
	}
	return "", nil, fmt.Errorf("%s is %s, neither cgroup2 nor a tmpfs of cgroup v1 hierarchies", mnt, fsTypeName(mnt))
}

// parseProcCgroups returns the v1 controllers that are enabled and mounted
// (hierarchy id not 0) from /proc/cgroups.
func parseProcCgroups(data string) []string {
	var out []string
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[1] != "0" && f[3] == "1" {
			out = append(out, f[0])
		}
	}
	sort.Strings(out)
	return out
}

func classifyCgroups(mnt, mode string, controllers []string) Result {
	have := map[string]bool{}
	for _, c := range controllers {
		have[c] = true
	}
	var missing []string
	for _, c := range wantControllers {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	layout := map[string]string{
		cgroupV1:     "cgroup v1",
		cgroupV2:     "cgroup v2 (unified)",
		cgroupHybrid: "cgroup hybrid (v1 controllers, v2 at " + filepath.Join(mnt, "unified") + ")",
	}[mode]
	list := strings.Join(controllers, " ")
	if list == "" {
		list = "none"
	}
	if len(missing) > 0 {
		return result("cgroups", Warn, fmt.Sprintf("controllers %s missing: limits on them will not apply", strings.Join(missing, ", ")),
			"%s, controllers: %s", layout, list)
	}
	return result("cgroups", OK, "cpu, memory and pids limits can apply", "%s, controllers: %s", layout, list)
}
