package metadata

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

func TestNamespaces(t *testing.T) {
	db := newTestDB(t)
	s := NewNamespaceStore(db)
	ctx := context.Background()

	if err := s.Create(ctx, "a", map[string]string{"x": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "b", nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		is   func(error) bool
	}{
		{"duplicate", s.Create(ctx, "a", nil), errdefs.IsAlreadyExists},
		{"bad name", s.Create(ctx, "../x", nil), errdefs.IsInvalidArgument},
		{"empty name", s.Create(ctx, "", nil), errdefs.IsInvalidArgument},
		{"bad label", s.Create(ctx, "c", map[string]string{"": "v"}), errdefs.IsInvalidArgument},
		{"bad label update", func() error { _, err := s.UpdateLabels(ctx, "a", map[string]string{"": "v"}, false); return err }(), errdefs.IsInvalidArgument},
		{"label update bad name", func() error { _, err := s.UpdateLabels(ctx, "../x", nil, false); return err }(), errdefs.IsInvalidArgument},
		{"delete missing", s.Delete(ctx, "nope"), errdefs.IsNotFound},
	} {
		if !tc.is(tc.err) {
			t.Errorf("%s: wrong error %v", tc.name, tc.err)
		}
	}
	names, err := s.List(ctx)
	if err != nil || fmt.Sprint(names) != "[a b]" {
		t.Fatalf("List: %v %v", names, err)
	}
	for _, tc := range []struct {
		name    string
		ns      string
		set     map[string]string
		replace bool
		want    string
	}{
		{"add one", "a", map[string]string{"y": "2"}, false, "map[x:1 y:2]"},
		{"delete one", "a", map[string]string{"x": ""}, false, "map[y:2]"},
		{"replace", "b", map[string]string{"p": "1", "q": "2"}, true, "map[p:1 q:2]"},
		{"replace drops the rest", "b", map[string]string{"q": "3"}, true, "map[q:3]"},
		// As containerd's store: setting a label creates the namespace.
		{"creates", "c", map[string]string{"k": "v"}, false, "map[k:v]"},
	} {
		got, err := s.UpdateLabels(ctx, tc.ns, tc.set, tc.replace)
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.name, got, err, tc.want)
		}
		if stored, err := s.Labels(ctx, tc.ns); err != nil || fmt.Sprint(stored) != tc.want {
			t.Errorf("%s: stored %v %v, want %s", tc.name, stored, err, tc.want)
		}
	}
	if err := s.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Labels(ctx, "nope"); !errdefs.IsNotFound(err) {
		t.Fatalf("Labels of missing: %v", err)
	}
	if err := s.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if names, _ := s.List(ctx); fmt.Sprint(names) != "[a]" {
		t.Fatalf("after delete: %v", names)
	}
}

func TestNamespaceDeleteRefusesNonEmpty(t *testing.T) {
	db := newTestDB(t)
	s := NewNamespaceStore(db)
	ctx := nsCtx("busy")
	if _, err := NewContainerStore(db).Create(ctx, testContainer("web")); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLeaseStore(db).Create(ctx, Lease{ID: "l"}); err != nil {
		t.Fatal(err)
	}
	err := s.Delete(ctx, "busy")
	if !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("delete non-empty: %v", err)
	}
	if !strings.Contains(err.Error(), `namespace "busy" must be empty, but it still has containers, leases`) {
		t.Fatalf("message: %v", err)
	}
	if err := NewContainerStore(db).Delete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := NewLeaseStore(db).Delete(ctx, "l"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "busy"); err != nil {
		t.Fatalf("delete emptied namespace: %v", err)
	}
}
