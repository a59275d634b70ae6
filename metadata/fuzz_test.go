package metadata

import (
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// FuzzContainerRoundTrip: whatever the input, Create either refuses it with
// InvalidArgument or stores it so that Get returns the same fields, and
// List's filters on those fields still parse or fail cleanly.
func FuzzContainerRoundTrip(f *testing.F) {
	f.Add("web", "app", "db", "docker.io/library/nginx:latest")
	f.Add("a.b-c", "", "x", "")
	f.Add("../etc", "k\x00", "\xff", "img with space")
	db, err := NewDB(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	s := NewContainerStore(db)
	ctx := nsCtx("fuzz")
	f.Fuzz(func(t *testing.T, id, key, value, image string) {
		c := testContainer(id)
		c.Labels = map[string]string{key: value}
		c.Image = image
		_, err := s.Create(ctx, c)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) && !errdefs.IsAlreadyExists(err) {
				t.Fatalf("Create(%q): unexpected error kind: %v", id, err)
			}
			return
		}
		defer s.Delete(ctx, id)
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%q) after Create: %v", id, err)
		}
		if got.Image != image || got.Labels[key] != value || len(got.Labels) != 1 {
			t.Fatalf("round trip of %q: %+v", id, got)
		}
		if _, err := s.List(ctx, "labels."+key+"=="+value); err != nil && !errdefs.IsInvalidArgument(err) {
			t.Fatalf("List: %v", err)
		}
	})
}
