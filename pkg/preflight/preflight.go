// Package preflight checks whether a host can run berthd and its
// containers: kernel, overlayfs, cgroups, runc, the shim, user namespaces,
// seccomp and free disk. Each check says what it found and why that
// matters; none of them changes the host beyond a temporary test mount.
package preflight

import (
	"context"
	"fmt"
	"strings"
)

// Status is a check's verdict.
type Status string

// A fail means containers will not run; a warn means some will not, or
// not well; ok means the requirement is met.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check's outcome.
type Result struct {
	// Name is the check's short id ("kernel", "overlayfs", …).
	Name   string `json:"name"`
	Status Status `json:"status"`
	// What is what was found; Why is why it matters or what to do.
	What string `json:"what"`
	Why  string `json:"why,omitempty"`
}

// String is the result as one line: "ok: what — why".
func (r Result) String() string {
	if r.Why == "" {
		return fmt.Sprintf("%s: %s", r.Status, r.What)
	}
	return fmt.Sprintf("%s: %s — %s", r.Status, r.What, r.Why)
}

func result(name string, st Status, why string, format string, args ...interface{}) Result {
	return Result{Name: name, Status: st, What: fmt.Sprintf(format, args...), Why: why}
}

// Check is one named check.
type Check struct {
	Name string
	Run  func(ctx context.Context) Result
}

// Options say where and what to check.
type Options struct {
	// Root is berthd's root dir: the overlay test mount and the disk check
	// run on its file system (its nearest existing parent if it does not
	// exist yet).
	Root string
	// Runc is the OCI runtime binary; empty means "runc" from PATH.
	Runc string
	// Shims are the shim binaries the configured runtimes run; empty means
	// containerd-shim-berth-v2.
	Shims []string
	// Extra checks run after the built-in ones (the daemon adds config and
	// plugin checks).
	Extra []Check
}

// Checks returns the built-in checks for opts followed by opts.Extra.
func Checks(opts Options) []Check {
	runc := opts.Runc
	if runc == "" {
		runc = "runc"
	}
	shims := opts.Shims
	if len(shims) == 0 {
		shims = []string{"containerd-shim-berth-v2"}
	}
	checks := []Check{
		{"kernel", func(context.Context) Result { return checkKernel() }},
		{"overlayfs", func(context.Context) Result { return checkOverlay(opts.Root) }},
		{"cgroups", func(context.Context) Result { return checkCgroups("/sys/fs/cgroup", "/proc/cgroups") }},
		{"runc", func(ctx context.Context) Result { return checkRunc(ctx, runc) }},
	}
	for _, s := range shims {
		s := s
		checks = append(checks, Check{"shim", func(context.Context) Result { return checkShim(s) }})
	}
	checks = append(checks,
		Check{"userns", func(context.Context) Result { return checkUserns("/proc/sys/user/max_user_namespaces") }},
		Check{"seccomp", func(context.Context) Result { return checkSeccomp("/proc/self/status") }},
		Check{"disk", func(context.Context) Result { return checkDisk(opts.Root) }},
	)
	return append(checks, opts.Extra...)
}

// Run runs every check in order. A check that panics is reported as a
// failure of that check, not of the whole run.
func Run(ctx context.Context, checks []Check) []Result {
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		out = append(out, runOne(ctx, c))
	}
	return out
}

func runOne(ctx context.Context, c Check) (r Result) {
	defer func() {
		if v := recover(); v != nil {
			r = Result{Name: c.Name, Status: Fail, What: c.Name + " check crashed", Why: fmt.Sprint(v)}
		}
	}()
	r = c.Run(ctx)
	if r.Name == "" {
		r.Name = c.Name
	}
	return r
}

// Failed reports whether any result is a failure.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Format renders results one per line.
func Format(results []Result) string {
	var b strings.Builder
	for _, r := range results {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}
