// Package overlay is the overlayfs snapshotter. Each snapshot is a
// directory <root>/snapshots/<id>/ with fs/ (the layer's own files, the
// overlay upper dir while active) and, for actives, work/ (overlay's work
// dir). A snapshot is mounted as an overlay of its parents' fs/ dirs under
// its own; bookkeeping is shared with native through storage.DirSnapshotter.
package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/snapshots"
	"github.com/berth-containers/berth/snapshots/storage"
)

// Opt configures the snapshotter.
type Opt func(*driver) error

// WithMountOptions adds options to every overlay mount it returns
// ("volatile", "metacopy=on", ...).
func WithMountOptions(options ...string) Opt {
	return func(d *driver) error {
		for _, o := range options {
			if strings.ContainsAny(o, ",\x00") || o == "" {
				return fmt.Errorf("overlay mount option %q: invalid", o)
			}
		}
		d.options = append(d.options, options...)
		return nil
	}
}

// New returns an overlay snapshotter rooted at root. It first mounts a
// test overlay there, so an unsupported kernel or backing file system is
// reported now rather than at the first container start.
func New(root string, opts ...Opt) (snapshots.Snapshotter, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("overlay snapshotter root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("overlay snapshotter root: %w", err)
	}
	if err := Supported(abs); err != nil {
		return nil, err
	}
	d := &driver{dirs: storage.SnapshotDirs(abs)}
	// With the index feature on, overlay refuses to mount an upper dir
	// with other lowers than the first time; containerd turns it off too.
	if _, err := os.Stat("/sys/module/overlay/parameters/index"); err == nil {
		d.options = append(d.options, "index=off")
	}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	return storage.NewDirSnapshotter(context.Background(), abs, d)
}

type driver struct {
	dirs    storage.Dirs
	options []string
}

func (d *driver) Subdirs(kind snapshots.Kind) map[string]os.FileMode {
	if kind == snapshots.KindActive {
		return map[string]os.FileMode{"fs": 0o755, "work": 0o711}
	}
	return map[string]os.FileMode{"fs": 0o755}
}

// Populate gives the new upper dir the owner of the parent's root, so a
// layer unpacked for a remapped user namespace stays owned by its root.
// With id mapping labels, the lowers are mounted idmapped and the upper dir
// belongs to the host ids of the container's root.
func (d *driver) Populate(ctx context.Context, s storage.Snapshot, dir string) error {
	uid, gid, idmapped, err := storage.IDMapsFromLabels(s.Labels)
	if err != nil {
		return err
	}
	if len(s.ParentIDs) == 0 {
		// Mounted as an idmapped bind of its own: stored as container ids.
		return nil
	}
	if idmapped {
		if s.Kind != snapshots.KindActive {
			return nil
		}
		if err := os.Lchown(filepath.Join(dir, "fs"), int(uid.HostID), int(gid.HostID)); err != nil {
			return fmt.Errorf("chown upper dir to the mapped root: %w", err)
		}
		return nil
	}
	fi, err := os.Stat(d.dirs.FSPath(s.ParentIDs[0]))
	if err != nil {
		return fmt.Errorf("stat parent: %w", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid == 0 && st.Gid == 0 {
		return nil
	}
	if err := os.Lchown(filepath.Join(dir, "fs"), int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown upper dir to parent's owner: %w", err)
	}
	return nil
}

// Mounts: without parents, a bind of the snapshot's own fs (read-only for
// a view); a view of one parent, a read-only bind of that parent; else an
// overlay of the parents (nearest first) under the upper dir, which a view
// has not, so overlay mounts it read-only.
func (d *driver) Mounts(s storage.Snapshot) []mount.Mount {
	rw := "rw"
	if s.Kind == snapshots.KindView {
		rw = "ro"
	}
	idmap := storage.IDMapOptions(s.Labels)
	if len(s.ParentIDs) == 0 {
		return []mount.Mount{{Type: "bind", Source: d.dirs.FSPath(s.ID), Options: append([]string{rw, "rbind"}, idmap...)}}
	}
	if s.Kind == snapshots.KindView && len(s.ParentIDs) == 1 {
		return []mount.Mount{{Type: "bind", Source: d.dirs.FSPath(s.ParentIDs[0]), Options: append([]string{"ro", "rbind"}, idmap...)}}
	}
	options := append(append([]string(nil), d.options...), idmap...)
	if s.Kind == snapshots.KindActive {
		options = append(options,
			"workdir="+filepath.Join(d.dirs.Path(s.ID), "work"),
			"upperdir="+d.dirs.FSPath(s.ID))
	}
	lowers := make([]string, len(s.ParentIDs))
	for i, id := range s.ParentIDs {
		lowers[i] = d.dirs.FSPath(id)
	}
	options = append(options, "lowerdir="+strings.Join(lowers, ":"))
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: options}}
}
