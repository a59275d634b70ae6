package metadata

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func testImage(name string, dgst digest.Digest) Image {
	return Image{Name: name, Target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: dgst, Size: 42}}
}

func TestImageCreateGetDelete(t *testing.T) {
	s := NewImageStore(newTestDB(t))
	ctx := nsCtx("default")
	img := testImage("docker.io/library/nginx:latest", testDigest)
	img.Labels = map[string]string{"a": "1"}
	img.Target.Annotations = map[string]string{"org.opencontainers.image.ref.name": "latest"}
	created, err := s.Create(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, img.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Target.Digest != img.Target.Digest || got.Target.Size != 42 || got.Target.MediaType != img.Target.MediaType ||
		got.Labels["a"] != "1" || got.Target.Annotations["org.opencontainers.image.ref.name"] != "latest" ||
		!got.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("round trip: %+v", got)
	}
	if _, err := s.Create(ctx, img); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.Get(nsCtx("other"), img.Name); !errdefs.IsNotFound(err) {
		t.Fatalf("other namespace: %v", err)
	}
	if err := s.Delete(ctx, img.Name); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, img.Name); !errdefs.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestImageCreateInvalid(t *testing.T) {
	s := NewImageStore(newTestDB(t))
	ctx := nsCtx("default")
	mod := func(f func(*Image)) Image {
		img := testImage("x", testDigest)
		f(&img)
		return img
	}
	for _, tc := range []struct {
		name string
		img  Image
		want string
	}{
		{"empty name", mod(func(i *Image) { i.Name = "" }), "must not be empty"},
		{"space", mod(func(i *Image) { i.Name = "a b" }), "whitespace"},
		{"control", mod(func(i *Image) { i.Name = "a\x01" }), "control"},
		{"long", mod(func(i *Image) { i.Name = strings.Repeat("a", 4097) }), "longer than"},
		{"bad utf8", mod(func(i *Image) { i.Name = "a\xff" }), "UTF-8"},
		{"no media type", mod(func(i *Image) { i.Target.MediaType = "" }), "media type"},
		{"bad digest", mod(func(i *Image) { i.Target.Digest = "sha256:xyz" }), "target digest"},
		{"bad label", mod(func(i *Image) { i.Labels = map[string]string{"": "v"} }), "label key"},
	} {
		if _, err := s.Create(ctx, tc.img); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestImageList(t *testing.T) {
	s := NewImageStore(newTestDB(t))
	ctx := nsCtx("default")
	other := digest.FromString("other")
	a := testImage("a", testDigest)
	a.Labels = map[string]string{"k": "v"}
	b := testImage("b", other)
	b.Target.MediaType = ocispec.MediaTypeImageIndex
	for _, img := range []Image{a, b} {
		if _, err := s.Create(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{nil, "[a b]"},
		{[]string{"name==b"}, "[b]"},
		{[]string{"labels.k==v"}, "[a]"},
		{[]string{"target.digest==" + other.String()}, "[b]"},
		{[]string{"target.mediatype~=index"}, "[b]"},
		{[]string{"name==a", "name==b"}, "[a b]"},
	} {
		got, err := s.List(ctx, tc.filters...)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, img := range got {
			names = append(names, img.Name)
		}
		sort.Strings(names)
		if fmt.Sprint(names) != tc.want {
			t.Errorf("List(%q) = %v, want %s", tc.filters, names, tc.want)
		}
	}
}

func TestImageUpdate(t *testing.T) {
	ctx := nsCtx("default")
	base := testImage("img", testDigest)
	base.Labels = map[string]string{"a": "1", "b": "2"}
	base.Target.Annotations = map[string]string{"x": "1"}
	newTarget := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("n"), Size: 7}
	for _, tc := range []struct {
		name   string
		update func(*Image)
		paths  []string
		errMsg string
		check  func(Image) bool
	}{
		{"labels.KEY", func(i *Image) { i.Labels = map[string]string{"a": "9"} }, []string{"labels.a", "labels.b"}, "",
			func(i Image) bool { return fmt.Sprint(i.Labels) == "map[a:9]" }},
		{"labels", func(i *Image) { i.Labels = nil }, []string{"labels"}, "",
			func(i Image) bool { return len(i.Labels) == 0 && i.Target.Digest == testDigest }},
		{"target", func(i *Image) { i.Target = newTarget; i.Labels = nil }, []string{"target"}, "",
			func(i Image) bool { return i.Target.Digest == newTarget.Digest && len(i.Labels) == 2 }},
		{"annotations.KEY", func(i *Image) { i.Target.Annotations = map[string]string{"y": "2"} }, []string{"annotations.y"}, "",
			func(i Image) bool { return fmt.Sprint(i.Target.Annotations) == "map[x:1 y:2]" }},
		{"annotations", func(i *Image) { i.Target.Annotations = map[string]string{"y": "2"} }, []string{"annotations"}, "",
			func(i Image) bool { return fmt.Sprint(i.Target.Annotations) == "map[y:2]" }},
		{"replace", func(i *Image) { i.Target = newTarget; i.Labels = map[string]string{"c": "3"} }, nil, "",
			func(i Image) bool { return i.Target.Digest == newTarget.Digest && fmt.Sprint(i.Labels) == "map[c:3]" }},
		{"name immutable", func(i *Image) {}, []string{"name"}, `field "name" is immutable`, nil},
		{"unknown", func(i *Image) {}, []string{"size"}, `unknown field "size"`, nil},
		{"bad target", func(i *Image) { i.Target.Digest = "nope" }, []string{"target"}, "target digest", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewImageStore(newTestDB(t))
			created, err := s.Create(ctx, base)
			if err != nil {
				t.Fatal(err)
			}
			u := created
			u.Labels = copyMap(created.Labels)
			u.Target.Annotations = copyMap(created.Target.Annotations)
			tc.update(&u)
			got, err := s.Update(ctx, u, tc.paths...)
			if tc.errMsg != "" {
				if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.errMsg) {
					t.Fatalf("got %v, want %q", err, tc.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stored, _ := s.Get(ctx, "img")
			if !tc.check(got) || !tc.check(stored) {
				t.Fatalf("returned %+v stored %+v", got, stored)
			}
		})
	}
	s := NewImageStore(newTestDB(t))
	if _, err := s.Update(ctx, base); !errdefs.IsNotFound(err) {
		t.Fatalf("update missing: %v", err)
	}
}
