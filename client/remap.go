package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
)

// WithRemappedSnapshot gives the container a writable snapshot of the
// image whose files are owned uid and gid higher than in the image, for
// a container in a user namespace that maps its root to host uid and gid
// (containerd's ctr --uidmap/--gidmap). The shifted copy of the image is
// a committed snapshot of its own, "<chain ID>-<uid>-<gid>", made once (on
// the client: it mounts the image's snapshot and chowns every file) and
// shared by every container with the same shift; the garbage collector
// takes it when no container's snapshot is on top of it any more.
func WithRemappedSnapshot(key string, img ImageRuntimeInfo, uid, gid uint32) NewContainerOpts {
	return func(ctx context.Context, c *Client, info *ContainerInfo) error {
		sn, err := info.snapshotterOrDefault(ctx, c)
		if err != nil {
			return err
		}
		ctx = c.withNamespace(ctx)
		s := c.SnapshotService(sn)
		parent := img.ChainID.String()
		base := fmt.Sprintf("%s-%d-%d", parent, uid, gid)
		if _, err := s.Stat(ctx, base); errdefs.IsNotFound(err) {
			if err := remapSnapshot(ctx, c, s, img, sn, base, uid, gid); err != nil {
				return fmt.Errorf("remap image %q to %d:%d: %w", img.Name, uid, gid, err)
			}
		} else if err != nil {
			return fmt.Errorf("stat snapshot %q: %w", base, err)
		}
		mounts, err := s.Prepare(ctx, key, base)
		if err != nil {
			return fmt.Errorf("prepare snapshot %q: %w", key, err)
		}
		info.rootfsMounts = mounts
		info.SnapshotKey = key
		info.preparedSnapshot = true
		info.Image = img.Name
		return nil
	}
}

// remapSnapshot commits base: the image's root file system with every
// owner shifted by uid and gid.
func remapSnapshot(ctx context.Context, c *Client, s snapshots.Snapshotter, img ImageRuntimeInfo, sn, base string, uid, gid uint32) error {
	suffix := make([]byte, 6)
	rand.Read(suffix)
	// Concurrent creators each work on their own key; the first commit
	// wins and the others use it.
	work := base + "-remap-" + hex.EncodeToString(suffix)
	mounts, err := s.Prepare(ctx, work, img.ChainID.String())
	if errdefs.IsNotFound(err) && EnsureUnpacked != nil {
		if err := EnsureUnpacked(ctx, c, img, sn); err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		mounts, err = s.Prepare(ctx, work, img.ChainID.String())
	}
	if err != nil {
		return fmt.Errorf("prepare snapshot %q: %w", work, err)
	}
	done := false
	defer func() {
		if !done {
			s.Remove(context.WithoutCancel(ctx), work)
		}
	}()
	if err := mount.WithTempMount(ctx, mounts, func(root string) error { return shiftOwners(root, uid, gid) }); err != nil {
		return err
	}
	if err := s.Commit(ctx, base, work); err != nil {
		if errdefs.IsAlreadyExists(err) {
			return nil // another container made it meanwhile
		}
		return fmt.Errorf("commit snapshot %q: %w", base, err)
	}
	done = true
	return nil
}

// shiftOwners adds uid and gid to the owner of every file under root,
// symlinks themselves included (never their targets). chown clears the
// set-user-ID and set-group-ID bits of a file, so they are put back.
func shiftOwners(root string, uid, gid uint32) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no owner information", path)
		}
		if uint64(st.Uid)+uint64(uid) > math.MaxUint32-1 || uint64(st.Gid)+uint64(gid) > math.MaxUint32-1 {
			return fmt.Errorf("%s: owner %d:%d shifted by %d:%d is out of range: %w", path, st.Uid, st.Gid, uid, gid, errdefs.ErrInvalidArgument)
		}
		if err := os.Lchown(path, int(st.Uid+uid), int(st.Gid+gid)); err != nil {
			return err
		}
		if mode := info.Mode(); mode.Type() == 0 && mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			if err := os.Chmod(path, mode); err != nil {
				return err
			}
		}
		return nil
	})
}

// ParseIDMapping parses an ID mapping "container-id:host-id:size"
// (containerd's ctr --uidmap/--gidmap).
func ParseIDMapping(s string) (containerID, hostID, size uint32, err error) {
	fields := strings.Split(s, ":")
	if len(fields) != 3 {
		return 0, 0, 0, fmt.Errorf("id mapping %q: want container-id:host-id:size: %w", s, errdefs.ErrInvalidArgument)
	}
	var v [3]uint32
	for i, f := range fields {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("id mapping %q: %q is not an id: %w", s, f, errdefs.ErrInvalidArgument)
		}
		v[i] = uint32(n)
	}
	if v[2] == 0 {
		return 0, 0, 0, fmt.Errorf("id mapping %q: size must be at least 1: %w", s, errdefs.ErrInvalidArgument)
	}
	for _, start := range v[:2] {
		if uint64(start)+uint64(v[2]) > math.MaxUint32 {
			return 0, 0, 0, fmt.Errorf("id mapping %q: range beyond the largest id: %w", s, errdefs.ErrInvalidArgument)
		}
	}
	return v[0], v[1], v[2], nil
}
