package preflight

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Kernel versions: overlayfs with several lower dirs needs 4.0; 5.4 is the
// oldest kernel the runtime stack (runc, cgroup v2, seccomp notify) is
// tested on nowadays.
var (
	minKernel  = [2]int{4, 0}
	goodKernel = [2]int{5, 4}
)

func checkKernel() Result {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return result("kernel", Fail, err.Error(), "kernel version unknown")
	}
	return classifyKernel(unix.ByteSliceToString(u.Release[:]))
}

func classifyKernel(release string) Result {
	major, minor, err := parseKernel(release)
	if err != nil {
		return result("kernel", Warn, err.Error(), "kernel %s: version not understood", release)
	}
	v := [2]int{major, minor}
	switch {
	case less(v, minKernel):
		return result("kernel", Fail, fmt.Sprintf("overlayfs with several lower layers needs %d.%d or newer", minKernel[0], minKernel[1]), "kernel %s", release)
	case less(v, goodKernel):
		return result("kernel", Warn, fmt.Sprintf("older than %d.%d; containers run, but cgroup v2 and seccomp features may be missing", goodKernel[0], goodKernel[1]), "kernel %s", release)
	}
	return result("kernel", OK, fmt.Sprintf("%d.%d or newer", goodKernel[0], goodKernel[1]), "kernel %s", release)
}

func less(a, b [2]int) bool { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) }

// parseKernel reads "6.1.0-18-amd64" as 6, 1.
func parseKernel(release string) (int, int, error) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("release %q has no major.minor", release)
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0, 0, fmt.Errorf("release %q: major: %w", release, err)
	}
	minorDigits := parts[1]
	if i := strings.IndexFunc(minorDigits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorDigits = minorDigits[:i]
	}
	minor, err := strconv.Atoi(minorDigits)
	if err != nil {
		return 0, 0, fmt.Errorf("release %q: minor: %w", release, err)
	}
	return major, minor, nil
}
