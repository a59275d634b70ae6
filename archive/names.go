package archive

import (
	"fmt"
	"path"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// maxNameLen is PATH_MAX: longer names cannot be used by anything that later
// opens the file by path, so a layer carrying one is refused.
const maxNameLen = 4096

var errEscapes = fmt.Errorf("path escapes target: %w", errdefs.ErrInvalidArgument)

// cleanName turns a tar entry name (or hardlink target) into a clean path
// relative to the root: a leading "/" is dropped, as GNU tar does, and any
// name that climbs above the root with ".." is refused rather than clamped,
// because a layer that tries is hostile or broken. "" means the root itself.
func cleanName(name string) (string, error) {
	if len(name) > maxNameLen {
		return "", fmt.Errorf("name is %d bytes, longer than %d: %w", len(name), maxNameLen, errdefs.ErrInvalidArgument)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("name contains a NUL byte: %w", errdefs.ErrInvalidArgument)
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errEscapes
	}
	if p == "." {
		return "", nil
	}
	return p, nil
}

// splitName splits a clean relative name into its parent ("" for the root)
// and its last component.
func splitName(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// joinName joins a clean relative parent and a component.
func joinName(dir, base string) string {
	if dir == "" {
		return base
	}
	return dir + "/" + base
}

// quoteName quotes an entry name for an error message, shortening hostile
// multi-kilobyte names so the message stays readable.
func quoteName(name string) string {
	const max = 256
	if len(name) > max {
		return fmt.Sprintf("%q…(%d bytes)", name[:max], len(name))
	}
	return fmt.Sprintf("%q", name)
}
