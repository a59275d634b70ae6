package mount

import (
	"fmt"
	"path/filepath"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/moby/sys/mountinfo"
)

// Info is one line of /proc/self/mountinfo.
type Info struct {
	ID         int
	Parent     int
	Major      int
	Minor      int
	Root       string // the path within the file system mounted here
	Mountpoint string
	Options    string // per-mount options
	Optional   string // propagation fields: "shared:1 master:2"
	FSType     string
	Source     string
	VFSOptions string // per-superblock options
}

// Lookup returns the mount that dir lives on: the deepest mount point that
// contains it (the topmost, when mounts are stacked).
func Lookup(dir string) (Info, error) {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return Info{}, fmt.Errorf("mount lookup %q: %w", dir, err)
	}
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(resolved))
	if err != nil {
		return Info{}, fmt.Errorf("mount lookup %q: read mountinfo: %w", dir, err)
	}
	var best *mountinfo.Info
	for _, m := range mounts {
		// Later lines are mounted later, so on a tie the last one is on top.
		if best == nil || len(m.Mountpoint) >= len(best.Mountpoint) {
			best = m
		}
	}
	if best == nil {
		return Info{}, fmt.Errorf("mount lookup %q: no mount contains it: %w", dir, errdefs.ErrNotFound)
	}
	return Info{
		ID: best.ID, Parent: best.Parent, Major: best.Major, Minor: best.Minor,
		Root: best.Root, Mountpoint: best.Mountpoint, Options: best.Options,
		Optional: best.Optional, FSType: best.FSType, Source: best.Source,
		VFSOptions: best.VFSOptions,
	}, nil
}
