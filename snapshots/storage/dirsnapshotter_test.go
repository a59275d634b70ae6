package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
)

// fakeDriver lays out fs/ only and can be told to fail Populate.
type fakeDriver struct {
	dirs Dirs
	fail error
}

func (d *fakeDriver) Subdirs(snapshots.Kind) map[string]os.FileMode {
	return map[string]os.FileMode{"fs": 0o755}
}

func (d *fakeDriver) Populate(context.Context, Snapshot, string) error { return d.fail }

func (d *fakeDriver) Mounts(s Snapshot) []mount.Mount {
	return []mount.Mount{{Type: "bind", Source: d.dirs.FSPath(s.ID), Options: []string{"rbind"}}}
}

func newDirSnapshotter(t *testing.T, root string) (*DirSnapshotter, *fakeDriver) {
	t.Helper()
	d := &fakeDriver{dirs: SnapshotDirs(root)}
	sn, err := NewDirSnapshotter(ctx, root, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	return sn, d
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCreateRollsBackDirectory(t *testing.T) {
	root := t.TempDir()
	sn, d := newDirSnapshotter(t, root)
	d.fail = errors.New("populate failed")
	if _, err := sn.Prepare(ctx, "a", ""); !errors.Is(err, d.fail) {
		t.Fatalf("prepare = %v", err)
	}
	if names := entries(t, filepath.Join(root, "snapshots")); len(names) != 0 {
		t.Fatalf("directories left after failed prepare: %v", names)
	}
	if _, err := sn.Stat(ctx, "a"); !errdefs.IsNotFound(err) {
		t.Fatalf("record left after failed prepare: %v", err)
	}
	d.fail = nil
	mounts, err := sn.Prepare(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if mounts[0].Source != filepath.Join(root, "snapshots", "1", "fs") {
		t.Fatalf("id not reused after rollback: %+v", mounts)
	}
}

// TestRecoverUnfinishedRemoval simulates a crash after Remove renamed the
// directory away but before its transaction committed.
func TestRecoverUnfinishedRemoval(t *testing.T) {
	root := t.TempDir()
	sn, _ := newDirSnapshotter(t, root)
	if _, err := sn.Prepare(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "snapshots", "1", "fs", "file"), []byte("x"), 0o644)
	sn.Close()
	dir := filepath.Join(root, "snapshots")
	if err := os.Rename(filepath.Join(dir, "1"), filepath.Join(dir, "rm-1")); err != nil {
		t.Fatal(err)
	}
	sn, _ = newDirSnapshotter(t, root)
	if _, err := os.Stat(filepath.Join(dir, "1", "fs", "file")); err != nil {
		t.Fatalf("directory not recovered: %v", err)
	}
	if err := sn.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if names := entries(t, dir); len(names) != 0 {
		t.Fatalf("left after remove: %v", names)
	}
}

func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 10000), 0o644)
	os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b"))
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	u, err := DiskUsage(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// dir, a (= b), d
	if u.Inodes != 3 || u.Size < 10000 {
		t.Fatalf("usage %+v", u)
	}
	if _, err := DiskUsage(ctx, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("usage of a missing dir succeeded")
	}
}
