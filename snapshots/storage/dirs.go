package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-containers/berth/pkg/log"
)

// removedPrefix marks a snapshot directory renamed away for deletion.
const removedPrefix = "rm-"

// Dirs keeps one directory per snapshot id under Root, in step with the
// metadata: every change to the directories happens inside a write
// transaction (holding bolt's writer lock), so Cleanup never races a
// Prepare or a Remove.
type Dirs struct {
	Root string // <snapshotter root>/snapshots
}

// Path is the directory of snapshot id.
func (d Dirs) Path(id uint64) string { return filepath.Join(d.Root, IDString(id)) }

// Create makes the directory of a snapshot just recorded in tx, with the
// given subdirectories and modes. The caller calls undo if the transaction
// then fails. A directory already at the path has no record (ids are never
// reused once committed; only a crash before a commit can leave one), so
// it is stale and replaced.
func (d Dirs) Create(tx *Tx, id uint64, subdirs map[string]os.FileMode) (undo func(), err error) {
	if err := tx.writable("create snapshot directory"); err != nil {
		return nil, err
	}
	path := d.Path(id)
	if err := os.RemoveAll(path); err != nil {
		return nil, fmt.Errorf("remove stale snapshot directory %q: %w", path, err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		return nil, fmt.Errorf("create snapshot directory: %w", err)
	}
	undo = func() { os.RemoveAll(path) }
	for name, mode := range subdirs {
		sub := filepath.Join(path, name)
		if err := os.Mkdir(sub, mode); err != nil {
			undo()
			return nil, fmt.Errorf("create snapshot directory: %w", err)
		}
		// Mkdir applies the umask; the mode is part of the layer.
		if err := os.Chmod(sub, mode); err != nil {
			undo()
			return nil, fmt.Errorf("create snapshot directory: %w", err)
		}
	}
	return undo, nil
}

// RemoveOnCommit renames the directory of id away inside tx and deletes it
// once tx commits. If the transaction fails, the caller calls undo to put
// the directory back. Between the rename and the commit a crash leaves a
// record whose directory is rm-<id>; Recover renames it back at startup.
func (d Dirs) RemoveOnCommit(ctx context.Context, tx *Tx, id uint64) (undo func(), err error) {
	if err := tx.writable("remove snapshot directory"); err != nil {
		return nil, err
	}
	path := d.Path(id)
	removed := filepath.Join(d.Root, removedPrefix+IDString(id))
	if err := os.Rename(path, removed); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			log.G(ctx).WithField("path", path).Warn("snapshot directory already gone")
			return func() {}, nil
		}
		return nil, fmt.Errorf("rename snapshot directory for removal: %w", err)
	}
	tx.OnCommit(func() {
		if err := os.RemoveAll(removed); err != nil {
			log.G(ctx).WithError(err).WithField("path", removed).Warn("remove snapshot directory failed; Cleanup will retry")
		}
	})
	return func() { os.Rename(removed, path) }, nil
}

// Recover renames back the directories of removals whose transaction never
// committed (the daemon died between rename and commit).
func (d Dirs) Recover(ctx context.Context, ms *MetaStore) error {
	return ms.Update(ctx, func(tx *Tx) error {
		ids, err := tx.IDMap(ctx)
		if err != nil {
			return err
		}
		entries, err := os.ReadDir(d.Root)
		if err != nil {
			return fmt.Errorf("recover snapshot directories: %w", err)
		}
		for _, e := range entries {
			id, ok := strings.CutPrefix(e.Name(), removedPrefix)
			if !ok {
				continue
			}
			if _, live := ids[id]; !live {
				continue
			}
			if _, err := os.Stat(filepath.Join(d.Root, id)); err == nil {
				continue // both exist: keep the live one, Cleanup takes the other
			}
			if err := os.Rename(filepath.Join(d.Root, e.Name()), filepath.Join(d.Root, id)); err != nil {
				return fmt.Errorf("recover snapshot directory %s: %w", id, err)
			}
			log.G(ctx).WithField("id", id).Info("recovered snapshot directory of an unfinished removal")
		}
		return nil
	})
}

// Cleanup deletes every directory under Root that no record points to:
// leftovers of removals, and of creations a crash interrupted. They are
// renamed away inside a transaction and deleted after it, so the writer
// lock is not held for the deletion.
func (d Dirs) Cleanup(ctx context.Context, ms *MetaStore) error {
	var doomed []string
	err := ms.Update(ctx, func(tx *Tx) error {
		ids, err := tx.IDMap(ctx)
		if err != nil {
			return err
		}
		entries, err := os.ReadDir(d.Root)
		if err != nil {
			return fmt.Errorf("cleanup snapshot directories: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			if id, ok := strings.CutPrefix(name, removedPrefix); ok {
				if _, live := ids[id]; !live {
					doomed = append(doomed, filepath.Join(d.Root, name))
				}
				continue
			}
			if _, live := ids[name]; live {
				continue
			}
			if _, err := strconv.ParseUint(name, 10, 64); err != nil {
				// Not a snapshot directory; not ours to delete.
				log.G(ctx).WithField("path", filepath.Join(d.Root, name)).Warn("unexpected entry in snapshot directory")
				continue
			}
			removed := filepath.Join(d.Root, removedPrefix+name)
			if err := os.RemoveAll(removed); err != nil {
				return fmt.Errorf("cleanup snapshot directory %s: %w", name, err)
			}
			if err := os.Rename(filepath.Join(d.Root, name), removed); err != nil {
				return fmt.Errorf("cleanup snapshot directory %s: %w", name, err)
			}
			doomed = append(doomed, removed)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range doomed {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: %w", err))
		}
	}
	return errors.Join(errs...)
}
