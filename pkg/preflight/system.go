package preflight

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// checkUserns reads max_user_namespaces: 0 turns user namespaces off.
func checkUserns(path string) Result {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return result("userns", Warn, "the kernel lacks CONFIG_USER_NS: containers with user namespaces cannot run", "user namespaces not supported (%s missing)", path)
		}
		return result("userns", Warn, err.Error(), "user namespaces unknown")
	}
	return classifyUserns(strings.TrimSpace(string(data)))
}

func classifyUserns(v string) Result {
	n, err := strconv.Atoi(v)
	if err != nil {
		return result("userns", Warn, err.Error(), "max_user_namespaces %q not understood", v)
	}
	if n == 0 {
		return result("userns", Warn, "set user.max_user_namespaces (sysctl) above 0 to run containers with user namespaces", "user namespaces disabled (max_user_namespaces = 0)")
	}
	return result("userns", OK, "containers may use user namespaces", "user namespaces enabled (max_user_namespaces = %d)", n)
}

// checkSeccomp reads the Seccomp field of /proc/self/status, present when
// the kernel has seccomp; PR_GET_SECCOMP confirms when it is absent.
func checkSeccomp(statusPath string) Result {
	data, err := os.ReadFile(statusPath)
	if err != nil {
		return result("seccomp", Warn, err.Error(), "seccomp unknown")
	}
	r := classifySeccomp(string(data))
	if r.Status != OK {
		if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err == nil {
			return result("seccomp", OK, "default seccomp profiles apply", "seccomp supported (prctl)")
		}
	}
	return r
}

func classifySeccomp(status string) Result {
	mode, filters := "", false
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "Seccomp":
			mode = strings.TrimSpace(v)
		case "Seccomp_filters":
			filters = true
		}
	}
	if mode == "" {
		return result("seccomp", Warn, "the kernel lacks CONFIG_SECCOMP: containers run without a syscall filter", "seccomp not supported")
	}
	what := map[string]string{"0": "berthd itself unconfined", "1": "berthd itself in strict mode", "2": "berthd itself filtered"}[mode]
	if what == "" {
		what = "mode " + mode
	}
	if !filters {
		return result("seccomp", OK, "default seccomp profiles apply", "seccomp supported (%s)", what)
	}
	return result("seccomp", OK, "default seccomp profiles apply", "seccomp filters supported (%s)", what)
}

// Free-space thresholds under the root: images and writable layers live
// there.
const (
	diskFail = 512 << 20
	diskWarn = 5 << 30
)

func checkDisk(root string) Result {
	dir, err := existingParent(root)
	if err != nil {
		return result("disk", Fail, err.Error(), "free disk unknown")
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return result("disk", Fail, err.Error(), "free disk under %s unknown", dir)
	}
	return classifyDisk(dir, st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize), st.Ffree, st.Files)
}

func classifyDisk(dir string, free, total, freeInodes, inodes uint64) Result {
	what := fmt.Sprintf("%s free of %s under %s", human(free), human(total), dir)
	if inodes > 0 {
		what += fmt.Sprintf(", %d%% of inodes free", freeInodes*100/inodes)
	}
	switch {
	case free < diskFail:
		return result("disk", Fail, fmt.Sprintf("under %s: pulls and container writes will fail", human(diskFail)), "%s", what)
	case inodes > 0 && freeInodes < 10000:
		return result("disk", Fail, "almost no inodes left: unpacking layers will fail", "%s", what)
	case free < diskWarn:
		return result("disk", Warn, fmt.Sprintf("under %s: a few images will fill it", human(diskWarn)), "%s", what)
	}
	return result("disk", OK, "room for images and container layers", "%s", what)
}

func human(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}
