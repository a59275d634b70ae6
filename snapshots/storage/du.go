package storage

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/berth-containers/berth/snapshots"
)

// DiskUsage measures the tree at dir: allocated bytes (st_blocks, so
// sparse files count what they hold) and inodes, each hard-linked inode
// once.
func DiskUsage(ctx context.Context, dir string) (snapshots.Usage, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]struct{}{}
	var u snapshots.Usage
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", path)
		}
		key := inode{uint64(st.Dev), st.Ino}
		if _, dup := seen[key]; dup {
			return nil
		}
		seen[key] = struct{}{}
		u.Inodes++
		u.Size += st.Blocks * 512
		return nil
	})
	if err != nil {
		return snapshots.Usage{}, fmt.Errorf("disk usage of %q: %w", dir, err)
	}
	return u, nil
}
