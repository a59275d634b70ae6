// Package testsuite is the conformance suite every Berth snapshotter
// passes: layer chains through real mounts, whiteouts, read-only views,
// removal rules, usage, walk filters, labels, cleanup and reopening.
// Tests must run as root (they mount).
package testsuite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
	"golang.org/x/sys/unix"
)

// New opens a snapshotter at root; called again on the same root to test
// that state survives a reopen.
type New func(ctx context.Context, root string) (snapshots.Snapshotter, error)

// Run runs the suite against the snapshotter that newFn makes.
func Run(t *testing.T, newFn New) {
	if os.Geteuid() != 0 {
		t.Skip("snapshotter conformance needs root for mounts")
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, snapshots.Snapshotter, string)
	}{
		{"LayerChain", testLayerChain},
		{"ViewReadOnly", testViewReadOnly},
		{"RemoveRules", testRemoveRules},
		{"Errors", testErrors},
		{"Usage", testUsage},
		{"Walk", testWalk},
		{"UpdateLabels", testUpdateLabels},
		{"Cleanup", testCleanup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			sn, err := newFn(context.Background(), root)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sn.Close() })
			tc.fn(t, sn, root)
		})
	}
	t.Run("Reopen", func(t *testing.T) { testReopen(t, newFn) })
}

var ctx = context.Background()

// MountAt mounts mounts on a fresh directory, unmounted when the test ends
// (even if it fails), and returns the directory.
func MountAt(t *testing.T, mounts []mount.Mount) string {
	t.Helper()
	dir := t.TempDir()
	if err := mount.All(mounts, dir); err != nil {
		t.Fatalf("mount %+v: %v", mounts, err)
	}
	t.Cleanup(func() {
		if err := mount.UnmountAll(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %q: %v", dir, err)
		}
	})
	return dir
}

// unmount ends a mount before the test does (commit wants it unmounted).
func unmount(t *testing.T, dir string) {
	t.Helper()
	if err := mount.UnmountAll(dir, 0); err != nil {
		t.Fatal(err)
	}
}

// layer is one step of a chain: changes applied through the active mount.
type layer struct {
	write  map[string]string // path -> content; "dir/" makes a directory
	remove []string
}

func apply(t *testing.T, root string, l layer) {
	t.Helper()
	for _, p := range l.remove {
		if err := os.RemoveAll(filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	paths := make([]string, 0, len(l.write))
	for p := range l.write {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(l.write[p]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// buildChain prepares, fills and commits each layer on the previous one,
// naming them layer-1, layer-2, ... and returns the last name.
func buildChain(t *testing.T, sn snapshots.Snapshotter, layers []layer) string {
	t.Helper()
	parent := ""
	for i, l := range layers {
		key := "active-" + string(rune('1'+i))
		name := "layer-" + string(rune('1'+i))
		mounts, err := sn.Prepare(ctx, key, parent)
		if err != nil {
			t.Fatalf("prepare %s: %v", key, err)
		}
		dir := MountAt(t, mounts)
		apply(t, dir, l)
		unmount(t, dir)
		if err := sn.Commit(ctx, name, key); err != nil {
			t.Fatalf("commit %s: %v", key, err)
		}
		parent = name
	}
	return parent
}

var threeLayers = []layer{
	{write: map[string]string{"a": "a1", "keep": "k", "gone": "g", "dir/x": "x1", "opaque/old": "o"}},
	{write: map[string]string{"a": "a2", "b": "b2", "dir/y": "y2"}, remove: []string{"gone"}},
	{write: map[string]string{"c": "c3", "opaque/new": "n3"}, remove: []string{"opaque"}},
}

// wantTree is what a view of threeLayers shows.
var wantTree = map[string]string{
	"a": "a2", "b": "b2", "c": "c3", "keep": "k", "dir/x": "x1", "dir/y": "y2", "opaque/new": "n3",
}

func checkTree(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			got[rel] = string(b)
		} else if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			t.Errorf("unexpected %v at %s (a whiteout showing?)", d.Type(), rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("tree = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("tree = %v, want %v", got, want)
		}
	}
}

func testLayerChain(t *testing.T, sn snapshots.Snapshotter, _ string) {
	top := buildChain(t, sn, threeLayers)
	mounts, err := sn.View(ctx, "view", top)
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, MountAt(t, mounts), wantTree)

	// An active on the chain sees the same and writes only its own layer.
	mounts, err = sn.Prepare(ctx, "rw", top)
	if err != nil {
		t.Fatal(err)
	}
	dir := MountAt(t, mounts)
	checkTree(t, dir, wantTree)
	apply(t, dir, layer{write: map[string]string{"d": "d4"}, remove: []string{"a"}})
	mounts, _ = sn.View(ctx, "view2", top)
	checkTree(t, MountAt(t, mounts), wantTree)

	info, err := sn.Stat(ctx, "layer-2")
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != snapshots.KindCommitted || info.Parent != "layer-1" || info.Name != "layer-2" {
		t.Fatalf("stat layer-2 = %+v", info)
	}
	if info, _ := sn.Stat(ctx, "rw"); info.Kind != snapshots.KindActive || info.Parent != top {
		t.Fatalf("stat rw = %+v", info)
	}
	if info, _ := sn.Stat(ctx, "view"); info.Kind != snapshots.KindView {
		t.Fatalf("stat view = %+v", info)
	}
}

func testViewReadOnly(t *testing.T, sn snapshots.Snapshotter, _ string) {
	one := buildChain(t, sn, threeLayers[:1])
	mounts2, err := sn.Prepare(ctx, "second", one)
	if err != nil {
		t.Fatal(err)
	}
	d := MountAt(t, mounts2)
	apply(t, d, threeLayers[1])
	unmount(t, d)
	if err := sn.Commit(ctx, "two", "second"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, parent string }{
		{"view-none", ""},
		{"view-one", one},
		{"view-two", "two"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			mounts, err := sn.View(ctx, tc.key, tc.parent)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range mounts {
				if !mount.ReadOnly(m) {
					t.Errorf("view mount %+v is not read-only", m)
				}
			}
			dir := MountAt(t, mounts)
			err = os.WriteFile(filepath.Join(dir, "new"), nil, 0o644)
			if !errors.Is(err, unix.EROFS) {
				t.Fatalf("write into view: %v, want EROFS", err)
			}
			again, err := sn.Mounts(ctx, tc.key)
			if err != nil || len(again) != len(mounts) {
				t.Fatalf("Mounts(%s) = %v, %v", tc.key, again, err)
			}
			if err := sn.Commit(ctx, tc.key+"-c", tc.key); !errdefs.IsFailedPrecondition(err) {
				t.Fatalf("commit of a view: %v", err)
			}
		})
	}
}

func testRemoveRules(t *testing.T, sn snapshots.Snapshotter, _ string) {
	top := buildChain(t, sn, threeLayers)
	if _, err := sn.Prepare(ctx, "child", top); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"layer-1", "layer-2", top} {
		if err := sn.Remove(ctx, key); !errdefs.IsFailedPrecondition(err) {
			t.Fatalf("remove %s with children: %v", key, err)
		}
	}
	for _, key := range []string{"child", top, "layer-2", "layer-1"} {
		if err := sn.Remove(ctx, key); err != nil {
			t.Fatalf("remove %s: %v", key, err)
		}
		if _, err := sn.Stat(ctx, key); !errdefs.IsNotFound(err) {
			t.Fatalf("stat after remove %s: %v", key, err)
		}
	}
	if err := sn.Remove(ctx, "layer-1"); !errdefs.IsNotFound(err) {
		t.Fatalf("second remove: %v", err)
	}
}

func testErrors(t *testing.T, sn snapshots.Snapshotter, _ string) {
	top := buildChain(t, sn, threeLayers[:1])
	if _, err := sn.Prepare(ctx, "active", top); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		do    func() error
		check func(error) bool
	}{
		{"prepare existing", func() error { _, err := sn.Prepare(ctx, "active", ""); return err }, errdefs.IsAlreadyExists},
		{"prepare on missing", func() error { _, err := sn.Prepare(ctx, "x", "missing"); return err }, errdefs.IsNotFound},
		{"prepare on active", func() error { _, err := sn.Prepare(ctx, "x", "active"); return err }, errdefs.IsFailedPrecondition},
		{"prepare empty key", func() error { _, err := sn.Prepare(ctx, "", ""); return err }, errdefs.IsInvalidArgument},
		{"stat missing", func() error { _, err := sn.Stat(ctx, "missing"); return err }, errdefs.IsNotFound},
		{"mounts missing", func() error { _, err := sn.Mounts(ctx, "missing"); return err }, errdefs.IsNotFound},
		{"mounts committed", func() error { _, err := sn.Mounts(ctx, top); return err }, errdefs.IsFailedPrecondition},
		{"commit committed", func() error { return sn.Commit(ctx, "y", top) }, errdefs.IsFailedPrecondition},
		{"commit onto existing", func() error { return sn.Commit(ctx, top, "active") }, errdefs.IsAlreadyExists},
		{"commit missing", func() error { return sn.Commit(ctx, "y", "missing") }, errdefs.IsNotFound},
		{"remove missing", func() error { return sn.Remove(ctx, "missing") }, errdefs.IsNotFound},
		{"usage missing", func() error { _, err := sn.Usage(ctx, "missing"); return err }, errdefs.IsNotFound},
	} {
		if err := tc.do(); !tc.check(err) {
			t.Errorf("%s: got %v", tc.name, err)
		}
	}
	// Keys are client strings with slashes and colons; they must work.
	key := "default/7/sha256:0123456789abcdef"
	if _, err := sn.Prepare(ctx, key, top); err != nil {
		t.Fatalf("prepare %q: %v", key, err)
	}
	if err := sn.Commit(ctx, key+"-c", key); err != nil {
		t.Fatalf("commit %q: %v", key, err)
	}
}

func testUsage(t *testing.T, sn snapshots.Snapshotter, _ string) {
	big := strings.Repeat("x", 64<<10)
	top := buildChain(t, sn, []layer{{write: map[string]string{"big": big, "d/": ""}}})
	u, err := sn.Usage(ctx, top)
	if err != nil {
		t.Fatal(err)
	}
	if u.Size < int64(len(big)) || u.Inodes < 3 {
		t.Fatalf("committed usage %+v: want >= %d bytes and 3 inodes", u, len(big))
	}
	mounts, err := sn.Prepare(ctx, "active", "")
	if err != nil {
		t.Fatal(err)
	}
	before, err := sn.Usage(ctx, "active")
	if err != nil {
		t.Fatal(err)
	}
	dir := MountAt(t, mounts)
	apply(t, dir, layer{write: map[string]string{"f": big}})
	after, err := sn.Usage(ctx, "active")
	if err != nil {
		t.Fatal(err)
	}
	if after.Size-before.Size < int64(len(big)) || after.Inodes != before.Inodes+1 {
		t.Fatalf("active usage went %+v -> %+v after writing %d bytes", before, after, len(big))
	}
}

func testWalk(t *testing.T, sn snapshots.Snapshotter, _ string) {
	top := buildChain(t, sn, threeLayers[:2])
	if _, err := sn.Prepare(ctx, "active", top, snapshots.WithLabels(map[string]string{"app": "web"})); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.View(ctx, "view", top); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{nil, "active layer-1 layer-2 view"},
		{[]string{"kind==committed"}, "layer-1 layer-2"},
		{[]string{"kind==view"}, "view"},
		{[]string{"parent==" + top}, "active view"},
		{[]string{"labels.app==web"}, "active"},
		{[]string{"name==layer-1", "name==view"}, "layer-1 view"},
		{[]string{"labels.app==nope"}, ""},
	} {
		var got []string
		err := sn.Walk(ctx, func(_ context.Context, i snapshots.Info) error {
			got = append(got, i.Name)
			return nil
		}, tc.filters...)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		if strings.Join(got, " ") != tc.want {
			t.Errorf("Walk(%v) = %v, want %s", tc.filters, got, tc.want)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := sn.Walk(ctx, func(context.Context, snapshots.Info) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("walk did not stop: %v after %d", err, n)
	}
}

func testUpdateLabels(t *testing.T, sn snapshots.Snapshotter, _ string) {
	top := buildChain(t, sn, threeLayers[:1])
	info, err := sn.Update(ctx, snapshots.Info{Name: top, Labels: map[string]string{"a": "1", "b": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if info.Labels["a"] != "1" || info.Labels["b"] != "2" {
		t.Fatalf("labels %v", info.Labels)
	}
	info, err = sn.Update(ctx, snapshots.Info{Name: top, Labels: map[string]string{"b": "3"}}, "labels.b", "labels.a")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Labels) != 1 || info.Labels["b"] != "3" {
		t.Fatalf("labels after field update %v", info.Labels)
	}
	stat, _ := sn.Stat(ctx, top)
	if len(stat.Labels) != 1 || stat.Labels["b"] != "3" || !stat.Updated.After(stat.Created) {
		t.Fatalf("stat after update %+v", stat)
	}
	if _, err := sn.Update(ctx, snapshots.Info{Name: top, Parent: "x"}, "parent"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("update parent: %v", err)
	}
	if _, err := sn.Update(ctx, snapshots.Info{Name: "missing"}, "labels"); !errdefs.IsNotFound(err) {
		t.Fatalf("update missing: %v", err)
	}
}

// testCleanup leaves directories as a crash would (the layout of
// storage.DirSnapshotter: <root>/snapshots/<id>) and checks Cleanup takes
// them and nothing live.
func testCleanup(t *testing.T, sn snapshots.Snapshotter, root string) {
	cleaner, ok := sn.(snapshots.Cleaner)
	if !ok {
		t.Skip("not a snapshots.Cleaner")
	}
	top := buildChain(t, sn, threeLayers)
	if err := sn.Remove(ctx, top); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "snapshots")
	for _, stray := range []string{"9999", "rm-9998"} {
		if err := os.MkdirAll(filepath.Join(dir, stray, "fs", "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := cleaner.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 {
		t.Fatalf("after cleanup: %v, want the two live snapshots", names)
	}
	mounts, err := sn.View(ctx, "view", "layer-2")
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, MountAt(t, mounts), map[string]string{"a": "a2", "b": "b2", "keep": "k", "dir/x": "x1", "dir/y": "y2", "opaque/old": "o"})
}

func testReopen(t *testing.T, newFn New) {
	root := t.TempDir()
	sn, err := newFn(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	top := buildChain(t, sn, threeLayers)
	if err := sn.Close(); err != nil {
		t.Fatal(err)
	}
	sn, err = newFn(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	mounts, err := sn.View(ctx, "view", top)
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, MountAt(t, mounts), wantTree)
}
