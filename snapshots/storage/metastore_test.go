package storage

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
)

func newStore(t *testing.T) (*MetaStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "metadata.db")
	ms, err := NewMetaStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	return ms, path
}

var ctx = context.Background()

func update(t *testing.T, ms *MetaStore, fn func(*Tx) error) error {
	t.Helper()
	return ms.Update(ctx, fn)
}

// chain builds base <- mid <- top committed, and an active on top.
func chain(t *testing.T, ms *MetaStore) {
	t.Helper()
	steps := []struct{ key, parent, name string }{
		{"base-a", "", "base"},
		{"mid-a", "base", "mid"},
		{"top-a", "mid", "top"},
	}
	for _, s := range steps {
		if err := update(t, ms, func(tx *Tx) error {
			if _, err := tx.CreateSnapshot(ctx, snapshots.KindActive, s.key, s.parent); err != nil {
				return err
			}
			_, err := tx.CommitActive(ctx, s.key, s.name, snapshots.Usage{Size: 10, Inodes: 2})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := update(t, ms, func(tx *Tx) error {
		_, err := tx.CreateSnapshot(ctx, snapshots.KindActive, "default/1/container", "top",
			snapshots.WithLabels(map[string]string{"app": "web"}))
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCreateAndChain(t *testing.T) {
	ms, _ := newStore(t)
	chain(t, ms)
	err := ms.View(ctx, func(tx *Tx) error {
		s, err := tx.GetSnapshot(ctx, "default/1/container")
		if err != nil {
			return err
		}
		if s.Kind != snapshots.KindActive || s.ID != 4 || len(s.ParentIDs) != 3 ||
			s.ParentIDs[0] != 3 || s.ParentIDs[1] != 2 || s.ParentIDs[2] != 1 {
			t.Errorf("snapshot = %+v", s)
		}
		id, info, usage, err := tx.GetInfo(ctx, "mid")
		if err != nil {
			return err
		}
		if id != 2 || info.Kind != snapshots.KindCommitted || info.Parent != "base" || usage.Size != 10 || info.Created.IsZero() {
			t.Errorf("mid = %d %+v %+v", id, info, usage)
		}
		if _, _, _, err := tx.GetInfo(ctx, "mid-a"); !errdefs.IsNotFound(err) {
			t.Errorf("active key after commit: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCreateErrors(t *testing.T) {
	ms, _ := newStore(t)
	chain(t, ms)
	for _, tc := range []struct {
		name        string
		kind        snapshots.Kind
		key, parent string
		check       func(error) bool
	}{
		{"exists", snapshots.KindActive, "top", "", errdefs.IsAlreadyExists},
		{"missing parent", snapshots.KindActive, "x", "nope", errdefs.IsNotFound},
		{"active parent", snapshots.KindActive, "x", "default/1/container", errdefs.IsFailedPrecondition},
		{"empty key", snapshots.KindActive, "", "", errdefs.IsInvalidArgument},
		{"nul key", snapshots.KindActive, "a\x00b", "", errdefs.IsInvalidArgument},
		{"newline key", snapshots.KindActive, "a\nb", "", errdefs.IsInvalidArgument},
		{"long key", snapshots.KindActive, strings.Repeat("k", 4097), "", errdefs.IsInvalidArgument},
		{"committed kind", snapshots.KindCommitted, "x", "", errdefs.IsInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := update(t, ms, func(tx *Tx) error {
				_, err := tx.CreateSnapshot(ctx, tc.kind, tc.key, tc.parent)
				return err
			})
			if !tc.check(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
	err := update(t, ms, func(tx *Tx) error {
		_, err := tx.CreateSnapshot(ctx, snapshots.KindActive, "x", "", snapshots.WithLabels(map[string]string{"": "v"}))
		return err
	})
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("empty label key: %v", err)
	}
	err = ms.View(ctx, func(tx *Tx) error {
		_, err := tx.CreateSnapshot(ctx, snapshots.KindActive, "ro", "")
		return err
	})
	if !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("create in read-only tx: %v", err)
	}
}

func TestCommitErrors(t *testing.T) {
	ms, _ := newStore(t)
	chain(t, ms)
	update(t, ms, func(tx *Tx) error {
		_, err := tx.CreateSnapshot(ctx, snapshots.KindView, "view", "top")
		return err
	})
	for _, tc := range []struct {
		key, name string
		check     func(error) bool
	}{
		{"view", "v2", errdefs.IsFailedPrecondition},
		{"top", "t2", errdefs.IsFailedPrecondition},
		{"nope", "n2", errdefs.IsNotFound},
		{"default/1/container", "mid", errdefs.IsAlreadyExists},
		{"default/1/container", "", errdefs.IsInvalidArgument},
	} {
		err := update(t, ms, func(tx *Tx) error {
			_, err := tx.CommitActive(ctx, tc.key, tc.name, snapshots.Usage{})
			return err
		})
		if !tc.check(err) {
			t.Errorf("CommitActive(%q, %q) = %v", tc.key, tc.name, err)
		}
	}
}

func TestRemove(t *testing.T) {
	ms, _ := newStore(t)
	chain(t, ms)
	remove := func(key string) (uint64, snapshots.Kind, error) {
		var id uint64
		var kind snapshots.Kind
		err := update(t, ms, func(tx *Tx) (err error) {
			id, kind, err = tx.Remove(ctx, key)
			return err
		})
		return id, kind, err
	}
	for _, key := range []string{"base", "mid", "top"} {
		if _, _, err := remove(key); !errdefs.IsFailedPrecondition(err) {
			t.Fatalf("remove %s with children: %v", key, err)
		}
	}
	for _, tc := range []struct {
		key  string
		id   uint64
		kind snapshots.Kind
	}{
		{"default/1/container", 4, snapshots.KindActive},
		{"top", 3, snapshots.KindCommitted},
		{"mid", 2, snapshots.KindCommitted},
		{"base", 1, snapshots.KindCommitted},
	} {
		id, kind, err := remove(tc.key)
		if err != nil || id != tc.id || kind != tc.kind {
			t.Fatalf("remove %s = %d %v %v", tc.key, id, kind, err)
		}
	}
	if _, _, err := remove("base"); !errdefs.IsNotFound(err) {
		t.Fatalf("second remove: %v", err)
	}
}

func TestUpdateInfo(t *testing.T) {
	ms, _ := newStore(t)
	chain(t, ms)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		paths  []string
		want   map[string]string
		check  func(error) bool
	}{
		{"add one", map[string]string{"a": "1", "ignored": "x"}, []string{"labels.a"}, map[string]string{"app": "web", "a": "1"}, nil},
		{"delete one", nil, []string{"labels.app"}, map[string]string{"a": "1"}, nil},
		{"replace", map[string]string{"b": "2"}, []string{"labels"}, map[string]string{"b": "2"}, nil},
		{"all fields", map[string]string{"c": "3"}, nil, map[string]string{"c": "3"}, nil},
		{"bad field", nil, []string{"parent"}, nil, errdefs.IsInvalidArgument},
		{"too long", map[string]string{"k": strings.Repeat("v", 5000)}, []string{"labels.k"}, nil, errdefs.IsInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got snapshots.Info
			err := update(t, ms, func(tx *Tx) (err error) {
				got, err = tx.UpdateInfo(ctx, snapshots.Info{Name: "default/1/container", Labels: tc.labels}, tc.paths...)
				return err
			})
			if tc.check != nil {
				if !tc.check(err) {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Labels) != len(tc.want) {
				t.Fatalf("labels %v, want %v", got.Labels, tc.want)
			}
			for k, v := range tc.want {
				if got.Labels[k] != v {
					t.Fatalf("labels %v, want %v", got.Labels, tc.want)
				}
			}
			if !got.Updated.After(got.Created) {
				t.Fatalf("updated %v not after created %v", got.Updated, got.Created)
			}
		})
	}
}

func TestWalkInfo(t *testing.T) {
	ms, _ := newStore(t)
	chain(t, ms)
	for _, tc := range []struct {
		filters []string
		want    []string
	}{
		{nil, []string{"base", "default/1/container", "mid", "top"}},
		{[]string{"kind==committed"}, []string{"base", "mid", "top"}},
		{[]string{"kind==active"}, []string{"default/1/container"}},
		{[]string{"parent==base"}, []string{"mid"}},
		{[]string{`labels.app==web`}, []string{"default/1/container"}},
		{[]string{`labels.app`}, []string{"default/1/container"}},
		{[]string{"name==top", "name==mid"}, []string{"mid", "top"}},
		{[]string{`name~="^(b|m)"`, "kind==active"}, []string{"base", "default/1/container", "mid"}},
	} {
		var got []string
		err := ms.View(ctx, func(tx *Tx) error {
			return tx.WalkInfo(ctx, func(_ context.Context, i snapshots.Info) error {
				got = append(got, i.Name)
				return nil
			}, tc.filters...)
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("WalkInfo(%v) = %v, want %v", tc.filters, got, tc.want)
		}
	}
	err := ms.View(ctx, func(tx *Tx) error {
		return tx.WalkInfo(ctx, func(context.Context, snapshots.Info) error { return nil }, "name==")
	})
	if err == nil {
		t.Fatal("bad filter accepted")
	}
}

func TestPersistAndIDMap(t *testing.T) {
	ms, path := newStore(t)
	chain(t, ms)
	ms.Close()
	ms, err := NewMetaStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	var m map[string]string
	if err := ms.View(ctx, func(tx *Tx) (err error) { m, err = tx.IDMap(ctx); return err }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"1": "base", "2": "mid", "3": "top", "4": "default/1/container"}
	if len(m) != len(want) {
		t.Fatalf("IDMap = %v", m)
	}
	for k, v := range want {
		if m[k] != v {
			t.Fatalf("IDMap = %v", m)
		}
	}
	// Ids keep counting after a reopen, so no directory name is reused.
	var s Snapshot
	if err := ms.Update(ctx, func(tx *Tx) (err error) {
		s, err = tx.CreateSnapshot(ctx, snapshots.KindView, "v", "top")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if s.ID != 5 {
		t.Fatalf("id after reopen = %d", s.ID)
	}
}

func TestRollback(t *testing.T) {
	ms, _ := newStore(t)
	committed := false
	err := ms.Update(ctx, func(tx *Tx) error {
		tx.OnCommit(func() { committed = true })
		if _, err := tx.CreateSnapshot(ctx, snapshots.KindActive, "a", ""); err != nil {
			return err
		}
		return errdefs.ErrConflict
	})
	if !errdefs.IsConflict(err) || committed {
		t.Fatalf("err %v committed %v", err, committed)
	}
	ms.View(ctx, func(tx *Tx) error {
		if _, _, _, err := tx.GetInfo(ctx, "a"); !errdefs.IsNotFound(err) {
			t.Fatalf("rolled back snapshot visible: %v", err)
		}
		return nil
	})
}
