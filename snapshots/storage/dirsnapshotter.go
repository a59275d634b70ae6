package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
)

// Driver is what one kind of snapshotter (overlay, native) adds to the
// bookkeeping DirSnapshotter shares: how a new snapshot's directory is laid
// out and filled, and how a snapshot is mounted. Each snapshot directory
// has an "fs" subdirectory holding the snapshot's own files; its disk
// usage is the snapshot's usage.
type Driver interface {
	// Subdirs lists the subdirectories, with modes, of a new snapshot.
	Subdirs(kind snapshots.Kind) map[string]os.FileMode
	// Populate prepares the new directory dir of s. It runs inside the
	// creating transaction, so the parents cannot be removed meanwhile.
	Populate(ctx context.Context, s Snapshot, dir string) error
	// Mounts describes how to mount s (active or view).
	Mounts(s Snapshot) []mount.Mount
}

// DirSnapshotter implements snapshots.Snapshotter and snapshots.Cleaner
// for snapshotters keeping one directory per snapshot:
//
//	<root>/metadata.db        the MetaStore
//	<root>/snapshots/<id>/    one directory per snapshot, laid out by the Driver
type DirSnapshotter struct {
	ms     *MetaStore
	dirs   Dirs
	driver Driver
}

var (
	_ snapshots.Snapshotter = (*DirSnapshotter)(nil)
	_ snapshots.Cleaner     = (*DirSnapshotter)(nil)
)

// SnapshotDirs returns the Dirs a DirSnapshotter at root uses, for a
// Driver to find snapshot paths.
func SnapshotDirs(root string) Dirs { return Dirs{Root: filepath.Join(root, "snapshots")} }

// FSPath is the directory holding the files of snapshot id.
func (d Dirs) FSPath(id uint64) string { return filepath.Join(d.Path(id), "fs") }

// NewDirSnapshotter opens the metadata at root and finishes removals a
// crash interrupted.
func NewDirSnapshotter(ctx context.Context, root string, driver Driver) (*DirSnapshotter, error) {
	dirs := SnapshotDirs(root)
	if err := os.MkdirAll(dirs.Root, 0o700); err != nil {
		return nil, fmt.Errorf("snapshotter root: %w", err)
	}
	ms, err := NewMetaStore(filepath.Join(root, "metadata.db"))
	if err != nil {
		return nil, err
	}
	if err := dirs.Recover(ctx, ms); err != nil {
		ms.Close()
		return nil, err
	}
	return &DirSnapshotter{ms: ms, dirs: dirs, driver: driver}, nil
}

func (b *DirSnapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	var info snapshots.Info
	err := b.ms.View(ctx, func(tx *Tx) (err error) {
		_, info, _, err = tx.GetInfo(ctx, key)
		return err
	})
	return info, err
}

func (b *DirSnapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	var out snapshots.Info
	err := b.ms.Update(ctx, func(tx *Tx) (err error) {
		out, err = tx.UpdateInfo(ctx, info, fieldpaths...)
		return err
	})
	return out, err
}

// Usage is recorded at commit for committed snapshots and measured now for
// active ones; a view writes nothing of its own.
func (b *DirSnapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	var (
		id    uint64
		info  snapshots.Info
		usage snapshots.Usage
	)
	if err := b.ms.View(ctx, func(tx *Tx) (err error) {
		id, info, usage, err = tx.GetInfo(ctx, key)
		return err
	}); err != nil {
		return snapshots.Usage{}, err
	}
	if info.Kind == snapshots.KindActive {
		u, err := DiskUsage(ctx, b.dirs.FSPath(id))
		if err != nil {
			return snapshots.Usage{}, fmt.Errorf("usage of snapshot %q: %w", key, err)
		}
		return u, nil
	}
	return usage, nil
}

// Mounts describes how to mount an active or view snapshot. A committed
// snapshot has no mounts of its own: view it (as containerd requires).
func (b *DirSnapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	var s Snapshot
	if err := b.ms.View(ctx, func(tx *Tx) (err error) {
		s, err = tx.GetSnapshot(ctx, key)
		return err
	}); err != nil {
		return nil, err
	}
	if s.Kind != snapshots.KindActive && s.Kind != snapshots.KindView {
		return nil, fmt.Errorf("mounts of snapshot %q: is %v, not active or view: %w", key, s.Kind, errdefs.ErrFailedPrecondition)
	}
	return b.driver.Mounts(s), nil
}

func (b *DirSnapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return b.create(ctx, snapshots.KindActive, key, parent, opts)
}

func (b *DirSnapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return b.create(ctx, snapshots.KindView, key, parent, opts)
}

// create records the snapshot and makes its directory in one transaction;
// if the transaction fails the directory is removed again.
func (b *DirSnapshotter) create(ctx context.Context, kind snapshots.Kind, key, parent string, opts []snapshots.Opt) ([]mount.Mount, error) {
	var (
		s    Snapshot
		undo func()
	)
	err := b.ms.Update(ctx, func(tx *Tx) (err error) {
		if s, err = tx.CreateSnapshot(ctx, kind, key, parent, opts...); err != nil {
			return err
		}
		if undo, err = b.dirs.Create(tx, s.ID, b.driver.Subdirs(kind)); err != nil {
			return fmt.Errorf("create snapshot %q: %w", key, err)
		}
		if err := b.driver.Populate(ctx, s, b.dirs.Path(s.ID)); err != nil {
			return fmt.Errorf("create snapshot %q: %w", key, err)
		}
		return nil
	})
	if err != nil {
		if undo != nil {
			undo()
		}
		return nil, err
	}
	return b.driver.Mounts(s), nil
}

// Commit measures the active snapshot key and records it as committed
// under name; its directory stays where it is (the id is kept).
func (b *DirSnapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	return b.ms.Update(ctx, func(tx *Tx) error {
		id, info, _, err := tx.GetInfo(ctx, key)
		if err != nil {
			return err
		}
		if info.Kind != snapshots.KindActive {
			return fmt.Errorf("commit snapshot %q: is %v, not active: %w", key, info.Kind, errdefs.ErrFailedPrecondition)
		}
		usage, err := DiskUsage(ctx, b.dirs.FSPath(id))
		if err != nil {
			return fmt.Errorf("commit snapshot %q: %w", key, err)
		}
		_, err = tx.CommitActive(ctx, key, name, usage, opts...)
		return err
	})
}

// Remove deletes the record and the directory of key; see
// Dirs.RemoveOnCommit for the ordering.
func (b *DirSnapshotter) Remove(ctx context.Context, key string) error {
	var undo func()
	err := b.ms.Update(ctx, func(tx *Tx) error {
		id, _, err := tx.Remove(ctx, key)
		if err != nil {
			return err
		}
		if undo, err = b.dirs.RemoveOnCommit(ctx, tx, id); err != nil {
			return fmt.Errorf("remove snapshot %q: %w", key, err)
		}
		return nil
	})
	if err != nil && undo != nil {
		undo()
	}
	return err
}

// Walk calls fn for each snapshot matching filters. fn runs outside the
// transaction, so it may call back into the snapshotter.
func (b *DirSnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	var infos []snapshots.Info
	if err := b.ms.View(ctx, func(tx *Tx) error {
		return tx.WalkInfo(ctx, func(_ context.Context, info snapshots.Info) error {
			infos = append(infos, info)
			return nil
		}, filters...)
	}); err != nil {
		return err
	}
	for _, info := range infos {
		if err := fn(ctx, info); err != nil {
			return err
		}
	}
	return nil
}

// Cleanup deletes snapshot directories no record points to.
func (b *DirSnapshotter) Cleanup(ctx context.Context) error {
	return b.dirs.Cleanup(ctx, b.ms)
}

func (b *DirSnapshotter) Close() error { return b.ms.Close() }
