package client

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/oci"
)

// rootfsLayers returns the directories of the root file system that ms
// mounts, for reading files in place (see oci.RootfsLayers), or nil when
// ms is not one bind or overlay mount with options known to leave lookups
// alone; the caller then mounts it.
func rootfsLayers(ms []mount.Mount) *oci.RootfsLayers {
	if len(ms) != 1 {
		return nil
	}
	m := ms[0]
	abs := func(dirs ...string) bool {
		for _, d := range dirs {
			if d == "" || !filepath.IsAbs(d) {
				return false
			}
		}
		return true
	}
	switch m.Type {
	case "bind", "rbind":
		if !abs(m.Source) {
			return nil
		}
		return &oci.RootfsLayers{Dirs: []string{m.Source}}
	case "overlay":
		var (
			upper     string
			lowers    []string
			userXattr bool
		)
		for _, o := range m.Options {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "lowerdir":
				// Escaped separators and a second lowerdir are left to
				// the kernel's parser.
				if lowers != nil || strings.Contains(v, `\`) {
					return nil
				}
				lowers = strings.Split(v, ":")
			case "upperdir":
				upper = v
			case "workdir", "index", "ro", "rw":
				// No effect on what a lookup finds.
			case "userxattr":
				userXattr = true
			default:
				// redirect_dir, metacopy, data-only layers, ...
				return nil
			}
		}
		dirs := lowers
		if upper != "" {
			dirs = append([]string{upper}, lowers...)
		}
		if len(lowers) == 0 || !abs(dirs...) {
			return nil
		}
		// overlay's trusted.* xattrs (opaque directories) are invisible
		// without CAP_SYS_ADMIN; not being root, mount (and fail) as before.
		if !userXattr && os.Geteuid() != 0 {
			return nil
		}
		return &oci.RootfsLayers{Dirs: dirs, Overlay: true, UserXattr: userXattr}
	}
	return nil
}
