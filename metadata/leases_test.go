package metadata

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

const testDigest = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

func TestLeases(t *testing.T) {
	s := NewLeaseStore(newTestDB(t))
	ctx := nsCtx("default")
	l, err := s.Create(ctx, Lease{ID: "l1", Labels: map[string]string{ExpireLabel: "2030-01-01T00:00:00Z", "app": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if l.CreatedAt.IsZero() {
		t.Fatal("CreatedAt not set")
	}
	if _, err := s.Create(ctx, Lease{ID: "l2"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		l    Lease
		is   func(error) bool
		msg  string
	}{
		{"duplicate", Lease{ID: "l1"}, errdefs.IsAlreadyExists, `lease "l1" in namespace "default"`},
		{"bad id", Lease{ID: "a\nb"}, errdefs.IsInvalidArgument, "lease id"},
		{"empty id", Lease{ID: ""}, errdefs.IsInvalidArgument, "lease id"},
		{"bad expiry", Lease{ID: "l3", Labels: map[string]string{ExpireLabel: "tomorrow"}}, errdefs.IsInvalidArgument, "RFC3339"},
		{"bad label", Lease{ID: "l3", Labels: map[string]string{"": "x"}}, errdefs.IsInvalidArgument, "label key"},
	} {
		if _, err := s.Create(ctx, tc.l); !tc.is(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// containerd's client makes IDs outside the identifier rule.
	if _, err := s.Create(ctx, Lease{ID: "455218903--vgB"}); err != nil {
		t.Fatalf("containerd-style lease id refused: %v", err)
	}
	if err := s.Delete(ctx, "455218903--vgB"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{nil, "[l1 l2]"},
		{[]string{"id==l2"}, "[l2]"},
		{[]string{"labels.app==x"}, "[l1]"},
		{[]string{`labels."containerd.io/gc.expire"`}, "[l1]"},
	} {
		got, err := s.List(ctx, tc.filters...)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, l := range got {
			ids = append(ids, l.ID)
		}
		if fmt.Sprint(ids) != tc.want {
			t.Errorf("List(%q) = %v, want %s", tc.filters, ids, tc.want)
		}
	}
	if got, _ := s.List(nsCtx("other")); len(got) != 0 {
		t.Fatalf("other namespace sees %v", got)
	}
	if err := s.Delete(ctx, "l2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "l2"); !errdefs.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestLeaseResources(t *testing.T) {
	s := NewLeaseStore(newTestDB(t))
	ctx := nsCtx("default")
	if _, err := s.Create(ctx, Lease{ID: "l"}); err != nil {
		t.Fatal(err)
	}
	good := []Resource{
		{ID: testDigest, Type: "content"},
		{ID: "ref-1", Type: "ingests"},
		{ID: "snap/key", Type: "snapshots/overlayfs"},
		{ID: "other", Type: "snapshots/native"},
	}
	for _, r := range good {
		if err := s.AddResource(ctx, "l", r); err != nil {
			t.Fatalf("add %v: %v", r, err)
		}
	}
	if err := s.AddResource(ctx, "l", good[0]); err != nil {
		t.Fatalf("re-add: %v", err)
	}
	for _, tc := range []struct {
		name  string
		lease string
		r     Resource
		is    func(error) bool
	}{
		{"bad digest", "l", Resource{ID: "sha256:nope", Type: "content"}, errdefs.IsInvalidArgument},
		{"unknown type", "l", Resource{ID: "x", Type: "images"}, errdefs.IsNotImplemented},
		{"bad snapshotter", "l", Resource{ID: "x", Type: "snapshots/"}, errdefs.IsInvalidArgument},
		{"empty id", "l", Resource{Type: "ingests"}, errdefs.IsInvalidArgument},
		{"missing lease", "nope", Resource{ID: "x", Type: "ingests"}, errdefs.IsNotFound},
		// The lease is looked for before the resource is judged.
		{"missing lease, bad resource", "nope", Resource{ID: "x", Type: "images"}, errdefs.IsNotFound},
	} {
		if err := s.AddResource(ctx, tc.lease, tc.r); !tc.is(err) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	list := func() string {
		rs, err := s.ListResources(ctx, "l")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.Type+":"+r.ID)
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	if got, want := list(), "content:"+testDigest+" ingests:ref-1 snapshots/native:other snapshots/overlayfs:snap/key"; got != want {
		t.Fatalf("resources %q, want %q", got, want)
	}
	if err := s.DeleteResource(ctx, "l", good[2]); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteResource(ctx, "l", Resource{ID: "never", Type: "snapshots/btrfs"}); err != nil {
		t.Fatalf("delete absent resource: %v", err)
	}
	if got := list(); strings.Contains(got, "snap/key") {
		t.Fatalf("deleted resource still listed: %q", got)
	}
	if _, err := s.ListResources(ctx, "nope"); !errdefs.IsNotFound(err) {
		t.Fatalf("resources of missing lease: %v", err)
	}
}
