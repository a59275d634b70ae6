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
		{"set label missing ns", s.SetLabel(ctx, "nope", "k", "v"), errdefs.IsNotFound},
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
	if err := s.SetLabel(ctx, "a", "y", "2"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLabel(ctx, "a", "x", ""); err != nil {
		t.Fatal(err)
	}
	labels, err := s.Labels(ctx, "a")
	if err != nil || fmt.Sprint(labels) != "map[y:2]" {
		t.Fatalf("Labels: %v %v", labels, err)
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
