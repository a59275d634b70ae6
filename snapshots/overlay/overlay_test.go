package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
	"github.com/berth-containers/berth/snapshots/testsuite"
	"golang.org/x/sys/unix"
)

func TestOverlayConformance(t *testing.T) {
	testsuite.Run(t, func(ctx context.Context, root string) (snapshots.Snapshotter, error) {
		return New(root)
	})
}

func newOverlay(t *testing.T) (snapshots.Snapshotter, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root := t.TempDir()
	sn, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	return sn, root
}

// commitLayer prepares key on parent, lets fill change the active mount
// (or its upper dir, given the mounts), and commits it as name.
func commitLayer(t *testing.T, sn snapshots.Snapshotter, name, parent string, fill func(dir string, mounts []mount.Mount)) {
	t.Helper()
	ctx := context.Background()
	mounts, err := sn.Prepare(ctx, name+"-active", parent)
	if err != nil {
		t.Fatal(err)
	}
	dir := testsuite.MountAt(t, mounts)
	fill(dir, mounts)
	if err := mount.UnmountAll(dir, 0); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, name, name+"-active"); err != nil {
		t.Fatal(err)
	}
}

func option(m mount.Mount, key string) string {
	for _, o := range m.Options {
		if v, ok := strings.CutPrefix(o, key+"="); ok {
			return v
		}
	}
	return ""
}

// TestApplierWhiteouts writes whiteouts the way the layer applier does,
// straight into the upper dir: a 0/0 character device hides a file, the
// opaque xattr hides a directory's lower contents.
func TestApplierWhiteouts(t *testing.T) {
	sn, _ := newOverlay(t)
	ctx := context.Background()
	commitLayer(t, sn, "base", "", func(dir string, _ []mount.Mount) {
		os.WriteFile(filepath.Join(dir, "hidden"), []byte("h"), 0o644)
		os.WriteFile(filepath.Join(dir, "kept"), []byte("k"), 0o644)
		os.MkdirAll(filepath.Join(dir, "opaque", "sub"), 0o755)
		os.WriteFile(filepath.Join(dir, "opaque", "old"), []byte("o"), 0o644)
	})
	commitLayer(t, sn, "mid", "base", func(dir string, _ []mount.Mount) {
		os.WriteFile(filepath.Join(dir, "mid"), []byte("m"), 0o644)
	})
	commitLayer(t, sn, "top", "mid", func(_ string, mounts []mount.Mount) {
		upper := option(mounts[0], "upperdir")
		if upper == "" {
			t.Fatalf("active on a parent has no upperdir: %+v", mounts)
		}
		if err := unix.Mknod(filepath.Join(upper, "hidden"), unix.S_IFCHR, 0); err != nil {
			t.Fatal(err)
		}
		op := filepath.Join(upper, "opaque")
		os.Mkdir(op, 0o755)
		if err := unix.Setxattr(op, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(op, "new"), []byte("n"), 0o644)
	})
	mounts, err := sn.View(ctx, "view", "top")
	if err != nil {
		t.Fatal(err)
	}
	if mounts[0].Type != "overlay" || option(mounts[0], "upperdir") != "" {
		t.Fatalf("view of three layers = %+v", mounts)
	}
	dir := testsuite.MountAt(t, mounts)
	for _, tc := range []struct {
		path   string
		exists bool
	}{
		{"hidden", false}, {"kept", true}, {"mid", true},
		{"opaque/old", false}, {"opaque/sub", false}, {"opaque/new", true},
	} {
		_, err := os.Lstat(filepath.Join(dir, tc.path))
		if (err == nil) != tc.exists {
			t.Errorf("%s: exists=%v, want %v", tc.path, err == nil, tc.exists)
		}
	}
}

func TestMountShapes(t *testing.T) {
	sn, root := newOverlay(t)
	ctx := context.Background()
	commitLayer(t, sn, "l1", "", func(string, []mount.Mount) {})
	commitLayer(t, sn, "l2", "l1", func(string, []mount.Mount) {})
	fs := func(id string) string { return filepath.Join(root, "snapshots", id, "fs") }
	for _, tc := range []struct {
		key, parent string
		view        bool
		typ, source string
		options     []string
	}{
		{"active-none", "", false, "bind", fs("3"), []string{"rw", "rbind"}},
		{"view-none", "", true, "bind", fs("4"), []string{"ro", "rbind"}},
		{"view-one", "l1", true, "bind", fs("1"), []string{"ro", "rbind"}},
		{"view-two", "l2", true, "overlay", "overlay", []string{"lowerdir=" + fs("2") + ":" + fs("1")}},
		{"active-one", "l1", false, "overlay", "overlay", []string{
			"workdir=" + filepath.Join(root, "snapshots", "7", "work"), "upperdir=" + fs("7"), "lowerdir=" + fs("1")}},
	} {
		var mounts []mount.Mount
		var err error
		if tc.view {
			mounts, err = sn.View(ctx, tc.key, tc.parent)
		} else {
			mounts, err = sn.Prepare(ctx, tc.key, tc.parent)
		}
		if err != nil {
			t.Fatal(err)
		}
		m := mounts[0]
		opts := slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "index=off" })
		if len(mounts) != 1 || m.Type != tc.typ || m.Source != tc.source || !slices.Equal(opts, tc.options) {
			t.Errorf("%s: mounts %+v, want %s %s %v", tc.key, mounts, tc.typ, tc.source, tc.options)
		}
	}
}

// TestDeepChain stacks enough layers that the overlay options pass a page,
// so mounting needs the mount package's relative-path fallback.
func TestDeepChain(t *testing.T) {
	sn, _ := newOverlay(t)
	ctx := context.Background()
	const depth = 90
	parent := ""
	for i := range depth {
		name := fmt.Sprintf("layer-%d", i)
		key := name + "-active"
		if _, err := sn.Prepare(ctx, key, parent); err != nil {
			t.Fatal(err)
		}
		mounts, _ := sn.Mounts(ctx, key)
		// Write straight into the upper dir: faster than mounting each.
		upper := option(mounts[0], "upperdir")
		if upper == "" {
			upper = mounts[0].Source
		}
		os.WriteFile(filepath.Join(upper, "top"), []byte(name), 0o644)
		os.WriteFile(filepath.Join(upper, name), nil, 0o644)
		if err := sn.Commit(ctx, name, key); err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	mounts, err := sn.Prepare(ctx, "container", parent)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Join(mounts[0].Options, ",")); n < os.Getpagesize() {
		t.Fatalf("options only %d bytes; the test does not reach the page limit", n)
	}
	dir := testsuite.MountAt(t, mounts)
	if b, err := os.ReadFile(filepath.Join(dir, "top")); err != nil || string(b) != parent {
		t.Fatalf("top = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "layer-0")); err != nil {
		t.Fatal(err)
	}
}

// TestUnsupported puts the root on an overlay, which cannot hold an upper
// dir, and expects New to say so.
func TestUnsupported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	base := t.TempDir()
	for _, d := range []string{"l", "u", "w", "m"} {
		os.Mkdir(filepath.Join(base, d), 0o755)
	}
	merged := filepath.Join(base, "m")
	m := mount.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(base, "l"), "upperdir=" + filepath.Join(base, "u"), "workdir=" + filepath.Join(base, "w")}}
	if err := m.Mount(merged); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mount.UnmountAll(merged, unix.MNT_DETACH) })
	_, err := New(filepath.Join(merged, "root"))
	if !errdefs.IsNotImplemented(err) || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("New on overlay = %v", err)
	}
}

// BenchmarkPrepareCommit measures the metadata and directory work of one
// layer on a growing chain.
func BenchmarkPrepareCommit(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	sn, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer sn.Close()
	ctx := context.Background()
	parent := ""
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprint("layer-", i)
		if _, err := sn.Prepare(ctx, name+"-active", parent); err != nil {
			b.Fatal(err)
		}
		if err := sn.Commit(ctx, name, name+"-active"); err != nil {
			b.Fatal(err)
		}
		parent = name
	}
}

// TestIDMapLabels: a snapshot labelled with id mappings mounts its lowers
// idmapped (the image's root-owned files show as the mapped root's) over
// an upper dir owned by the mapped root; bad labels create nothing.
func TestIDMapLabels(t *testing.T) {
	sn, root := newOverlay(t)
	ctx := context.Background()
	commitLayer(t, sn, "base", "", func(dir string, _ []mount.Mount) {
		os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
		os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644)
	})
	labels := snapshots.WithLabels(map[string]string{
		snapshots.LabelSnapshotUIDMapping: "0:100000:65536",
		snapshots.LabelSnapshotGIDMapping: "0:200000:65536",
	})
	mounts, err := sn.Prepare(ctx, "mapped", "base", labels)
	if err != nil {
		t.Fatal(err)
	}
	if option(mounts[0], "uidmap") != "0:100000:65536" || option(mounts[0], "gidmap") != "0:200000:65536" {
		t.Fatalf("mounts %+v lack the idmap options", mounts)
	}
	again, err := sn.Mounts(ctx, "mapped")
	if err != nil || !slices.Equal(again[0].Options, mounts[0].Options) {
		t.Fatalf("Mounts = %+v, %v; want %+v", again, err, mounts)
	}
	var st unix.Stat_t
	if err := unix.Stat(option(mounts[0], "upperdir"), &st); err != nil || st.Uid != 100000 || st.Gid != 200000 {
		t.Fatalf("upper dir owner %d:%d (%v), want 100000:200000", st.Uid, st.Gid, err)
	}
	dir := testsuite.MountAt(t, mounts)
	if err := unix.Stat(filepath.Join(dir, "etc", "passwd"), &st); err != nil || st.Uid != 100000 || st.Gid != 200000 {
		t.Fatalf("mapped file owner %d:%d (%v), want 100000:200000", st.Uid, st.Gid, err)
	}
	mount.UnmountAll(dir, 0)
	if err := unix.Stat(filepath.Join(root, "snapshots", "1", "fs", "etc", "passwd"), &st); err != nil || st.Uid != 0 {
		t.Fatalf("the layer's own file owner %d (%v), want 0", st.Uid, err)
	}
	// A view of one layer is an idmapped read-only bind.
	vm, err := sn.View(ctx, "mapped-view", "base", labels)
	if err != nil || vm[0].Type != "bind" || option(vm[0], "uidmap") != "0:100000:65536" {
		t.Fatalf("view mounts %+v, %v", vm, err)
	}

	for _, tc := range []struct {
		labels map[string]string
		want   func(error) bool
	}{
		{map[string]string{snapshots.LabelSnapshotUIDMapping: "0:100000:65536"}, errdefs.IsInvalidArgument},
		{map[string]string{snapshots.LabelSnapshotUIDMapping: "0:1:0", snapshots.LabelSnapshotGIDMapping: "0:1:1"}, errdefs.IsInvalidArgument},
		{map[string]string{snapshots.LabelSnapshotUIDMapping: "1:100000:10", snapshots.LabelSnapshotGIDMapping: "1:100000:10"}, errdefs.IsNotImplemented},
	} {
		if _, err := sn.Prepare(ctx, "bad", "base", snapshots.WithLabels(tc.labels)); !tc.want(err) {
			t.Errorf("labels %v: %v", tc.labels, err)
		}
		if _, err := sn.Stat(ctx, "bad"); !errdefs.IsNotFound(err) {
			t.Errorf("labels %v: snapshot left: %v", tc.labels, err)
		}
	}
}

// The id mapping labels are fixed at creation: updates that would add,
// change or drop them are refused; other labels still change.
func TestIDMapLabelsFixed(t *testing.T) {
	sn, _ := newOverlay(t)
	ctx := context.Background()
	commitLayer(t, sn, "base", "", func(string, []mount.Mount) {})
	mapping := map[string]string{snapshots.LabelSnapshotUIDMapping: "0:100000:65536", snapshots.LabelSnapshotGIDMapping: "0:100000:65536"}
	if _, err := sn.Prepare(ctx, "mapped", "base", snapshots.WithLabels(mapping)); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "plain", "base"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key   string
		info  map[string]string
		paths []string
	}{
		{"plain", map[string]string{snapshots.LabelSnapshotUIDMapping: "0:1:1"}, []string{"labels." + snapshots.LabelSnapshotUIDMapping}},
		{"mapped", map[string]string{snapshots.LabelSnapshotUIDMapping: "0:1:1"}, []string{"labels." + snapshots.LabelSnapshotUIDMapping}},
		{"mapped", map[string]string{"other": "x"}, nil}, // a whole-set replace dropping them
	} {
		if _, err := sn.Update(ctx, snapshots.Info{Name: tc.key, Labels: tc.info}, tc.paths...); !errdefs.IsInvalidArgument(err) {
			t.Errorf("update %s %v: %v, want InvalidArgument", tc.key, tc.info, err)
		}
	}
	keep := map[string]string{"other": "x"}
	for k, v := range mapping {
		keep[k] = v
	}
	if _, err := sn.Update(ctx, snapshots.Info{Name: "mapped", Labels: keep}); err != nil {
		t.Errorf("update keeping the mapping: %v", err)
	}
	if _, err := sn.Update(ctx, snapshots.Info{Name: "mapped", Labels: map[string]string{"more": "y"}}, "labels.more"); err != nil {
		t.Errorf("update of another label: %v", err)
	}
}
