package preflight

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// checkRunc finds the OCI runtime and asks it for its version.
func checkRunc(ctx context.Context, bin string) Result {
	path, err := exec.LookPath(bin)
	if err != nil {
		return result("runc", Fail, "containers cannot run without it (apt-get install runc)", "%s not found on PATH", bin)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return result("runc", Fail, fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out))), "%s --version failed", path)
	}
	first := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	return result("runc", OK, "the OCI runtime the shim runs", "%s (%s)", first, path)
}

// checkShim finds a shim binary the way the runtime manager does: an
// absolute path as is, anything else on PATH.
func checkShim(bin string) Result {
	path := bin
	if filepath.IsAbs(bin) {
		if _, err := os.Stat(bin); err != nil {
			return result("shim", Fail, "tasks on the runtimes that use it cannot start", "shim %s: %v", bin, err)
		}
	} else {
		p, err := exec.LookPath(bin)
		if err != nil {
			return result("shim", Fail, "tasks on the runtimes that use it cannot start (make install puts it in PREFIX/bin)", "shim %s not found on PATH", bin)
		}
		path = p
	}
	fi, err := os.Stat(path)
	if err != nil {
		return result("shim", Fail, err.Error(), "shim %s", path)
	}
	if fi.Mode()&0o111 == 0 {
		return result("shim", Fail, "it is not executable", "shim %s", path)
	}
	return result("shim", OK, "started once per container", "shim %s", path)
}
