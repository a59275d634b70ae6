package overlay

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
)

// Supported mounts a small overlay (two lowers and an upper) in a scratch
// directory under root and unmounts it again. It fails with
// ErrNotImplemented if the kernel lacks overlayfs or root's file system
// cannot hold an upper dir (overlay on overlay, some network file systems).
func Supported(root string) error {
	scratch, err := os.MkdirTemp(root, "overlay-check-")
	if err != nil {
		return fmt.Errorf("overlay check: create scratch directory: %w", err)
	}
	dirs := map[string]string{}
	for _, name := range []string{"lower1", "lower2", "upper", "work", "merged"} {
		dirs[name] = filepath.Join(scratch, name)
		if err := os.Mkdir(dirs[name], 0o755); err != nil {
			os.RemoveAll(scratch)
			return fmt.Errorf("overlay check: %w", err)
		}
	}
	m := mount.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + dirs["lower2"] + ":" + dirs["lower1"],
		"upperdir=" + dirs["upper"],
		"workdir=" + dirs["work"],
	}}
	if err := m.Mount(dirs["merged"]); err != nil {
		os.RemoveAll(scratch)
		return fmt.Errorf("overlayfs is not supported on %q (need the overlay module and an upper-capable file system such as ext4 or xfs): %w: %w",
			root, err, errdefs.ErrNotImplemented)
	}
	if err := mount.UnmountAll(dirs["merged"], 0); err != nil {
		// Never RemoveAll a directory that may still be mounted.
		return fmt.Errorf("overlay check: %w", err)
	}
	if err := os.RemoveAll(scratch); err != nil {
		return fmt.Errorf("overlay check: remove scratch directory: %w", err)
	}
	return nil
}
