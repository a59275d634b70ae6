package metadata

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/leases"
	"github.com/berth-containers/berth/snapshots"
)

func newTestSnapshotter(t *testing.T) (*DB, snapshots.Snapshotter, *fakeSnapshotter) {
	t.Helper()
	db := newTestDB(t)
	fake := newFakeSnapshotter()
	return db, NewSnapshotter(db, "fake", fake), fake
}

func walkNames(t *testing.T, ctx context.Context, sn snapshots.Snapshotter, filters ...string) string {
	t.Helper()
	var names []string
	err := sn.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		names = append(names, info.Name)
		return nil
	}, filters...)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

func TestSnapshotterNamespaces(t *testing.T) {
	db, sn, fake := newTestSnapshotter(t)
	a, b := nsCtx("a"), nsCtx("b")
	for _, ctx := range []context.Context{a, b} {
		if _, err := sn.Prepare(ctx, "layer-1", ""); err != nil {
			t.Fatal(err)
		}
		if err := sn.Commit(ctx, "base", "layer-1", snapshots.WithLabels(map[string]string{"l": "1"})); err != nil {
			t.Fatal(err)
		}
		if _, err := sn.Prepare(ctx, "rw", "base"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fake.keys()); n != 4 {
		t.Fatalf("backend has %d snapshots, want 4 (2 per namespace): %v", n, fake.keys())
	}
	info, err := sn.Stat(a, "rw")
	if err != nil || info.Kind != snapshots.KindActive || info.Parent != "base" || info.Name != "rw" {
		t.Fatalf("Stat: %+v %v", info, err)
	}
	info, err = sn.Stat(a, "base")
	if err != nil || info.Kind != snapshots.KindCommitted || info.Labels["l"] != "1" {
		t.Fatalf("Stat base: %+v %v", info, err)
	}
	if _, err := sn.Stat(a, "layer-1"); !errdefs.IsNotFound(err) {
		t.Fatalf("committed active still there: %v", err)
	}
	if _, err := sn.Stat(nsCtx("c"), "base"); !errdefs.IsNotFound(err) {
		t.Fatalf("c sees base: %v", err)
	}
	if m, err := sn.Mounts(a, "rw"); err != nil || len(m) != 1 {
		t.Fatalf("Mounts: %v %v", m, err)
	}
	if _, err := sn.Usage(a, "base"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		is   func(error) bool
	}{
		{"duplicate key", func() error { _, err := sn.Prepare(a, "rw", ""); return err }(), errdefs.IsAlreadyExists},
		{"missing parent", func() error { _, err := sn.Prepare(a, "x", "nope"); return err }(), errdefs.IsNotFound},
		{"empty key", func() error { _, err := sn.View(a, "", ""); return err }(), errdefs.IsInvalidArgument},
		{"remove parent", sn.Remove(a, "base"), errdefs.IsFailedPrecondition},
		{"commit onto existing", func() error {
			sn.Prepare(a, "rw2", "base")
			return sn.Commit(a, "base", "rw2")
		}(), errdefs.IsAlreadyExists},
		{"commit missing", sn.Commit(a, "n", "nope"), errdefs.IsNotFound},
		{"update unknown field", func() error { _, err := sn.Update(a, snapshots.Info{Name: "base"}, "parent"); return err }(), errdefs.IsInvalidArgument},
	} {
		if !tc.is(tc.err) {
			t.Errorf("%s: %v", tc.name, tc.err)
		}
	}
	if got := walkNames(t, a, sn); got != "base rw rw2" {
		t.Fatalf("Walk a: %q", got)
	}
	if got := walkNames(t, a, sn, "kind==committed"); got != "base" {
		t.Fatalf("Walk committed: %q", got)
	}
	if got := walkNames(t, a, sn, "parent==base,name==rw"); got != "rw" {
		t.Fatalf("Walk parent: %q", got)
	}
	// As in containerd, a snapshot's name and parent are always present
	// (a base snapshot's parent is empty), so "parent" alone matches all.
	if got := walkNames(t, a, sn, "parent"); got != "base rw rw2" {
		t.Fatalf("Walk parent present: %q", got)
	}
	if got := walkNames(t, a, sn, "parent!=base"); got != "base" {
		t.Fatalf("Walk parent not base: %q", got)
	}
	if info, err := sn.Update(a, snapshots.Info{Name: "base", Labels: map[string]string{"m": "2"}}, "labels.m"); err != nil || fmt.Sprint(info.Labels) != "map[l:1 m:2]" {
		t.Fatalf("Update: %+v %v", info, err)
	}
	if got := walkNames(t, a, sn, "labels.m==2"); got != "base" {
		t.Fatalf("Walk labels: %q", got)
	}
	for _, k := range []string{"rw", "rw2", "base"} {
		if err := sn.Remove(a, k); err != nil {
			t.Fatalf("remove %s: %v", k, err)
		}
	}
	db.removals.Wait() // backend removals finish after Remove answers
	if n := len(fake.keys()); n != 2 {
		t.Fatalf("backend has %d snapshots after a removed its own, want 2", n)
	}
	if got := walkNames(t, b, sn); got != "base rw" {
		t.Fatalf("b after a's removals: %q", got)
	}
	if err := NewNamespaceStore(sn.(*snapshotter).db).Delete(context.Background(), "a"); err != nil {
		t.Fatalf("delete emptied namespace: %v", err)
	}
	if err := NewNamespaceStore(sn.(*snapshotter).db).Delete(context.Background(), "b"); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("delete namespace with snapshots: %v", err)
	}
}

// A chain removed leaf first must leave nothing in the backend, however
// slow the leaf's background removal is: the parent's waits for it.
func TestSnapshotterRemoveChainLeafFirst(t *testing.T) {
	db, sn, fake := newTestSnapshotter(t)
	ctx := nsCtx("default")
	fake.slowRemove = func(string) { time.Sleep(20 * time.Millisecond) }
	parent := ""
	for i := 0; i < 4; i++ {
		key := fmt.Sprintf("extract-%d", i)
		name := fmt.Sprintf("layer-%d", i)
		if _, err := sn.Prepare(ctx, key, parent); err != nil {
			t.Fatal(err)
		}
		if err := sn.Commit(ctx, name, key); err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	if _, err := sn.Prepare(ctx, "rw", parent); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"rw", "layer-3", "layer-2", "layer-1", "layer-0"} {
		if err := sn.Remove(ctx, k); err != nil {
			t.Fatalf("remove %s: %v", k, err)
		}
	}
	db.removals.Wait()
	if k := fake.keys(); len(k) != 0 {
		t.Fatalf("backend keeps %v after the chain's removal", k)
	}
}

func TestSnapshotterLease(t *testing.T) {
	db, sn, _ := newTestSnapshotter(t)
	ctx := nsCtx("default")
	ls := NewLeaseStore(db)
	if _, err := ls.Create(ctx, Lease{ID: "unpack"}); err != nil {
		t.Fatal(err)
	}
	lctx := leases.WithLease(ctx, "unpack")
	if _, err := sn.Prepare(lctx, "extract", ""); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(lctx, "layer", "extract"); err != nil {
		t.Fatal(err)
	}
	rs, err := ls.ListResources(ctx, "unpack")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(rs)
	if want := "[{extract snapshots/fake} {layer snapshots/fake}]"; got != want {
		t.Fatalf("resources %s, want %s", got, want)
	}
	if _, err := sn.Prepare(leases.WithLease(ctx, "nope"), "x", ""); !errdefs.IsNotFound(err) {
		t.Fatalf("missing lease: %v", err)
	}
}
