package mount

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	"golang.org/x/sys/unix"
)

// pageSize bounds mount(2)'s data string: the kernel copies one page, and
// the string must end (NUL included) within it.
func pageSize() int { return os.Getpagesize() }

// mountOverlayCompact mounts an overlay whose options are too long for one
// page, as deep layer chains make them: the directories are rewritten
// relative to their common parent and the mount runs with that parent as
// the working directory.
//
// The working directory must not change for the whole process (other
// goroutines resolve relative paths too). So the mount runs on a goroutine
// locked to its OS thread, which first unshares its fs_struct
// (unshare(CLONE_FS)) so chdir affects that thread alone. The goroutine
// exits still locked, and the Go runtime then ends the thread instead of
// reusing it, so the changed directory never leaks to other goroutines.
func mountOverlayCompact(source, target string, flags uintptr, data []string) error {
	dir, compact, err := compactOverlayOptions(data)
	if err != nil {
		return fmt.Errorf("mount overlay on %q: %w", target, err)
	}
	joined := strings.Join(compact, ",")
	if len(joined) >= pageSize() {
		return fmt.Errorf("mount overlay on %q: options are %d bytes even relative to %q, over the %d-byte page: %w",
			target, len(joined), dir, pageSize(), errdefs.ErrInvalidArgument)
	}
	absTarget, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("mount overlay on %q: %w", target, err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: see above; the thread dies with the goroutine.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("mount overlay on %q: unshare fs of the mounting thread: %w", target, err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- fmt.Errorf("mount overlay on %q: chdir %q: %w", target, dir, err)
			return
		}
		errc <- mountSyscall(source, absTarget, "overlay", flags, joined)
	}()
	return <-errc
}

// compactOverlayOptions rewrites lowerdir, upperdir and workdir relative to
// the deepest directory that contains all of them.
func compactOverlayOptions(data []string) (string, []string, error) {
	var dirs []string
	for _, o := range data {
		key, value, ok := strings.Cut(o, "=")
		if !ok {
			continue
		}
		switch key {
		case "lowerdir":
			if strings.Contains(value, `\`) {
				// Escaped colons would need the kernel's unescaping rules;
				// our paths never have them, so refuse rather than guess.
				return "", nil, fmt.Errorf("lowerdir with escapes cannot be shortened: %w", errdefs.ErrInvalidArgument)
			}
			dirs = append(dirs, strings.Split(value, ":")...)
		case "upperdir", "workdir":
			dirs = append(dirs, value)
		}
	}
	if len(dirs) == 0 {
		return "", nil, fmt.Errorf("no overlay directories to shorten: %w", errdefs.ErrInvalidArgument)
	}
	common := ""
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			return "", nil, fmt.Errorf("overlay directory %q is not absolute: %w", d, errdefs.ErrInvalidArgument)
		}
		parent := filepath.Dir(filepath.Clean(d))
		if common == "" {
			common = parent
			continue
		}
		for !within(parent, common) {
			common = filepath.Dir(common)
		}
	}
	rel := func(p string) string {
		r, err := filepath.Rel(common, p)
		if err != nil { // cannot happen: common contains every path
			return p
		}
		return r
	}
	out := make([]string, 0, len(data))
	for _, o := range data {
		key, value, ok := strings.Cut(o, "=")
		switch {
		case ok && key == "lowerdir":
			parts := strings.Split(value, ":")
			for i, p := range parts {
				parts[i] = rel(p)
			}
			out = append(out, "lowerdir="+strings.Join(parts, ":"))
		case ok && (key == "upperdir" || key == "workdir"):
			out = append(out, key+"="+rel(value))
		default:
			out = append(out, o)
		}
	}
	return common, out, nil
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}
