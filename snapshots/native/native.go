// Package native is the snapshotter that needs no kernel support: each
// snapshot is a full copy of its parent's tree, in
// <root>/snapshots/<id>/fs, and mounts are bind mounts of it. It is slow
// and uses much disk, but works on any file system (overlay on overlay,
// in nested containers). Bookkeeping is shared with overlay through
// storage.DirSnapshotter.
package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/snapshots"
	"github.com/berth-containers/berth/snapshots/storage"
)

// New returns a native snapshotter rooted at root.
func New(root string) (snapshots.Snapshotter, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("native snapshotter root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("native snapshotter root: %w", err)
	}
	return storage.NewDirSnapshotter(context.Background(), abs, &driver{dirs: storage.SnapshotDirs(abs)})
}

type driver struct {
	dirs storage.Dirs
}

func (d *driver) Subdirs(snapshots.Kind) map[string]os.FileMode {
	return map[string]os.FileMode{"fs": 0o755}
}

// Populate copies the nearest parent, which holds the whole tree. With id
// mapping labels the copy keeps the image's owners and is mounted
// idmapped.
func (d *driver) Populate(ctx context.Context, s storage.Snapshot, dir string) error {
	if _, _, _, err := storage.IDMapsFromLabels(s.Labels); err != nil {
		return err
	}
	if len(s.ParentIDs) == 0 {
		return nil
	}
	if err := copyTree(ctx, d.dirs.FSPath(s.ParentIDs[0]), filepath.Join(dir, "fs")); err != nil {
		return fmt.Errorf("copy parent: %w", err)
	}
	return nil
}

func (d *driver) Mounts(s storage.Snapshot) []mount.Mount {
	rw := "rw"
	if s.Kind == snapshots.KindView {
		rw = "ro"
	}
	return []mount.Mount{{Type: "bind", Source: d.dirs.FSPath(s.ID), Options: append([]string{rw, "rbind"}, storage.IDMapOptions(s.Labels)...)}}
}
