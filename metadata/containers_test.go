package metadata

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func testAny(v string) *anypb.Any {
	return &anypb.Any{TypeUrl: "test/" + v, Value: []byte(v)}
}

func testContainer(id string) Container {
	return Container{
		ID:      id,
		Runtime: RuntimeInfo{Name: "io.containerd.berth.v2", Options: testAny("opts")},
		Spec:    testAny("spec"),
	}
}

func TestContainerCreateGet(t *testing.T) {
	s := NewContainerStore(newTestDB(t))
	ctx := nsCtx("default")
	c := testContainer("web")
	c.Labels = map[string]string{"app": "web"}
	c.Image = "docker.io/library/nginx:latest"
	c.Snapshotter, c.SnapshotKey = "overlayfs", "web-snap"
	c.Extensions = map[string]*anypb.Any{"ext": testAny("e")}
	c.SandboxID = "sb"
	created, err := s.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if created.CreatedAt.IsZero() || !created.CreatedAt.Equal(created.UpdatedAt) {
		t.Fatalf("timestamps %v %v", created.CreatedAt, created.UpdatedAt)
	}
	got, err := s.Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.Image != c.Image || got.Labels["app"] != "web" || got.Snapshotter != "overlayfs" ||
		got.SnapshotKey != "web-snap" || got.SandboxID != "sb" || got.Runtime.Name != c.Runtime.Name ||
		!proto.Equal(got.Runtime.Options, c.Runtime.Options) || !proto.Equal(got.Spec, c.Spec) ||
		!proto.Equal(got.Extensions["ext"], c.Extensions["ext"]) || !got.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("round trip: got %+v", got)
	}
	if _, err := s.Get(nsCtx("other"), "web"); !errdefs.IsNotFound(err) {
		t.Fatalf("other namespace sees container: %v", err)
	}
	_, err = s.Get(ctx, "nope")
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), `container "nope" in namespace "default"`) {
		t.Fatalf("missing: %v", err)
	}
}

func TestContainerCreateInvalid(t *testing.T) {
	s := NewContainerStore(newTestDB(t))
	ctx := nsCtx("default")
	mod := func(f func(*Container)) Container {
		c := testContainer("web")
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		c    Container
		want string
	}{
		{"bad id", mod(func(c *Container) { c.ID = "a/b" }), "container id"},
		{"empty id", mod(func(c *Container) { c.ID = "" }), "must not be empty"},
		{"no runtime", mod(func(c *Container) { c.Runtime.Name = "" }), "runtime name"},
		{"no spec", mod(func(c *Container) { c.Spec = nil }), "spec must be set"},
		{"key without snapshotter", mod(func(c *Container) { c.SnapshotKey = "k" }), "snapshotter must be set"},
		{"empty label key", mod(func(c *Container) { c.Labels = map[string]string{"": "x"} }), "label key"},
		{"huge label", mod(func(c *Container) { c.Labels = map[string]string{"big": strings.Repeat("x", 4094)} }), `label "big"`},
	} {
		_, err := s.Create(ctx, tc.c)
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want InvalidArgument mentioning %q", tc.name, err, tc.want)
		}
	}
	// Exactly at the limit is fine.
	ok := mod(func(c *Container) { c.Labels = map[string]string{"big": strings.Repeat("x", 4093)} })
	if _, err := s.Create(ctx, ok); err != nil {
		t.Fatalf("label at limit: %v", err)
	}
}

func TestContainerCreateRace(t *testing.T) {
	s := NewContainerStore(newTestDB(t))
	ctx := nsCtx("default")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, exists := 0, 0
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Create(ctx, testContainer("same"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errdefs.IsAlreadyExists(err):
				exists++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || exists != 199 {
		t.Fatalf("%d winners, %d AlreadyExists", wins, exists)
	}
}

func TestContainerList(t *testing.T) {
	s := NewContainerStore(newTestDB(t))
	ctx := nsCtx("default")
	for _, c := range []Container{
		func() Container {
			c := testContainer("web")
			c.Image, c.Labels = "nginx", map[string]string{"tier": "front", "app.kubernetes.io/name": "web"}
			c.Snapshotter = "overlayfs"
			return c
		}(),
		func() Container {
			c := testContainer("db")
			c.Image, c.Labels = "postgres", map[string]string{"tier": "back"}
			c.Runtime.Name = "io.containerd.runc.v2"
			return c
		}(),
	} {
		if _, err := s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create(nsCtx("other"), testContainer("elsewhere")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{nil, "[db web]"},
		{[]string{"id==web"}, "[web]"},
		{[]string{"image==postgres"}, "[db]"},
		{[]string{"runtime.name==io.containerd.runc.v2"}, "[db]"},
		{[]string{"snapshotter==overlayfs"}, "[web]"},
		{[]string{"labels.tier==back", "labels.tier==front"}, "[db web]"},
		{[]string{`labels."app.kubernetes.io/name"==web`}, "[web]"},
		{[]string{"labels.tier"}, "[db web]"},
		{[]string{"labels.tier==front,image==nginx|id==db"}, "[db web]"},
		{[]string{"image~=^ng"}, "[web]"},
		{[]string{"id==nope"}, "[]"},
	} {
		got, err := s.List(ctx, tc.filters...)
		if err != nil {
			t.Fatalf("%v: %v", tc.filters, err)
		}
		var ids []string
		for _, c := range got {
			ids = append(ids, c.ID)
		}
		sort.Strings(ids)
		if fmt.Sprint(ids) != tc.want {
			t.Errorf("List(%q) = %v, want %v", tc.filters, ids, tc.want)
		}
	}
	if _, err := s.List(ctx, "id=="); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad filter: %v", err)
	}
}

func TestContainerUpdate(t *testing.T) {
	ctx := nsCtx("default")
	base := testContainer("web")
	base.Labels = map[string]string{"a": "1", "b": "2"}
	base.Image = "nginx"
	base.Snapshotter, base.SnapshotKey = "overlayfs", "k1"
	base.Extensions = map[string]*anypb.Any{"x": testAny("x"), "y": testAny("y")}
	for _, tc := range []struct {
		name   string
		update func(*Container)
		paths  []string
		err    func(error) bool
		errMsg string
		check  func(Container) bool
	}{
		{"labels.KEY set", func(c *Container) { c.Labels = map[string]string{"b": "3"} }, []string{"labels.b"}, nil, "",
			func(c Container) bool { return fmt.Sprint(c.Labels) == "map[a:1 b:3]" }},
		{"labels.KEY delete", func(c *Container) { c.Labels = nil }, []string{"labels.a"}, nil, "",
			func(c Container) bool { return fmt.Sprint(c.Labels) == "map[b:2]" }},
		{"labels replace", func(c *Container) { c.Labels = map[string]string{"z": "9"} }, []string{"labels"}, nil, "",
			func(c Container) bool { return fmt.Sprint(c.Labels) == "map[z:9]" }},
		{"image", func(c *Container) { c.Image = "redis"; c.Labels = nil }, []string{"image"}, nil, "",
			func(c Container) bool { return c.Image == "redis" && len(c.Labels) == 2 }},
		{"spec", func(c *Container) { c.Spec = testAny("spec2") }, []string{"spec"}, nil, "",
			func(c Container) bool { return proto.Equal(c.Spec, testAny("spec2")) }},
		{"snapshotkey", func(c *Container) { c.SnapshotKey = "k2" }, []string{"snapshotkey"}, nil, "",
			func(c Container) bool { return c.SnapshotKey == "k2" }},
		{"extensions.KEY", func(c *Container) { c.Extensions = map[string]*anypb.Any{"x": testAny("x2")} }, []string{"extensions.x", "extensions.y"}, nil, "",
			func(c Container) bool { return len(c.Extensions) == 1 && proto.Equal(c.Extensions["x"], testAny("x2")) }},
		{"full replace", func(c *Container) { c.Image = "redis"; c.Labels = nil; c.Extensions = nil }, nil, nil, "",
			func(c Container) bool { return c.Image == "redis" && c.Labels == nil && c.Extensions == nil }},
		{"full replace keeps runtime options", func(c *Container) { c.Runtime.Options = nil }, nil, nil, "",
			func(c Container) bool { return proto.Equal(c.Runtime.Options, testAny("opts")) }},
		{"runtime immutable", func(c *Container) { c.Runtime.Name = "other" }, []string{"runtime"}, errdefs.IsInvalidArgument, `field "runtime" is immutable`, nil},
		{"runtime immutable on replace", func(c *Container) { c.Runtime.Name = "other" }, nil, errdefs.IsInvalidArgument, "runtime is immutable", nil},
		{"snapshotter immutable", func(c *Container) { c.Snapshotter = "native" }, []string{"snapshotter"}, errdefs.IsInvalidArgument, `field "snapshotter" is immutable`, nil},
		{"unknown path", func(c *Container) {}, []string{"bogus"}, errdefs.IsInvalidArgument, `unknown field "bogus"`, nil},
		{"spec removed", func(c *Container) { c.Spec = nil }, []string{"spec"}, errdefs.IsInvalidArgument, "spec must be set", nil},
		{"bad label", func(c *Container) { c.Labels = map[string]string{"k": strings.Repeat("v", 5000)} }, []string{"labels.k"}, errdefs.IsInvalidArgument, `label "k"`, nil},
		{"missing", func(c *Container) { c.ID = "nope" }, nil, errdefs.IsNotFound, `container "nope"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewContainerStore(newTestDB(t))
			created, err := s.Create(ctx, base)
			if err != nil {
				t.Fatal(err)
			}
			u := created
			u.Labels = copyMap(created.Labels)
			u.Extensions = copyAnyMap(created.Extensions)
			tc.update(&u)
			got, err := s.Update(ctx, u, tc.paths...)
			if tc.err != nil {
				if !tc.err(err) || !strings.Contains(err.Error(), tc.errMsg) {
					t.Fatalf("got %v, want error mentioning %q", err, tc.errMsg)
				}
				stored, _ := s.Get(ctx, "web")
				if !stored.UpdatedAt.Equal(created.UpdatedAt) {
					t.Fatalf("failed update changed the record")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stored, err := s.Get(ctx, "web")
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(got) || !tc.check(stored) {
				t.Fatalf("returned %+v, stored %+v", got, stored)
			}
			if !stored.CreatedAt.Equal(created.CreatedAt) || stored.UpdatedAt.Before(created.UpdatedAt) {
				t.Fatalf("timestamps: %v %v", stored.CreatedAt, stored.UpdatedAt)
			}
		})
	}
}

func TestContainerDelete(t *testing.T) {
	s := NewContainerStore(newTestDB(t))
	ctx := nsCtx("default")
	if _, err := s.Create(ctx, testContainer("web")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(nsCtx("other"), "web"); !errdefs.IsNotFound(err) {
		t.Fatalf("delete from other namespace: %v", err)
	}
	if err := s.Delete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "web"); !errdefs.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.Create(ctx, testContainer("web")); err != nil {
		t.Fatalf("re-create after delete: %v", err)
	}
}

// benchContainers fills a store with n containers shaped like the ones
// `ctr run` makes (image, runtime, snapshot, a spec of specBytes, a label).
func benchContainers(b *testing.B, n, specBytes int) (*ContainerStore, context.Context) {
	db, err := NewDB(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s, ctx := NewContainerStore(db), nsCtx("default")
	spec := &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec", Value: []byte(strings.Repeat("x", specBytes))}
	for i := 0; i < n; i++ {
		c := testContainer(fmt.Sprintf("list-%04d", i))
		c.Image, c.Spec = "docker.io/library/busybox:latest", spec
		c.Snapshotter, c.SnapshotKey = "overlayfs", c.ID
		c.Labels = map[string]string{"io.containerd.image.config.stop-signal": "SIGTERM"}
		if _, err := s.Create(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	return s, ctx
}

func BenchmarkContainerList(b *testing.B) {
	for _, spec := range []int{100, 6000} {
		b.Run(fmt.Sprintf("1000x%dB", spec), func(b *testing.B) {
			s, ctx := benchContainers(b, 1000, spec)
			b.ReportAllocs()
			for b.Loop() {
				cs, err := s.List(ctx)
				if err != nil || len(cs) != 1000 {
					b.Fatal(len(cs), err)
				}
			}
		})
	}
}

func BenchmarkContainerWalkStored(b *testing.B) {
	s, ctx := benchContainers(b, 1000, 100)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := s.WalkStored(ctx, func(*StoredContainer) error { n++; return nil }); err != nil || n != 1000 {
			b.Fatal(n, err)
		}
	}
}

func TestContainerWalkStored(t *testing.T) {
	db := newTestDB(t)
	s, ctx := NewContainerStore(db), nsCtx("default")
	web := testContainer("web")
	web.Image, web.Labels = "nginx", map[string]string{"tier": "front", "app": "web"}
	web.Snapshotter, web.SnapshotKey, web.SandboxID = "overlayfs", "web-snap", "sb"
	web.Extensions = map[string]*anypb.Any{"ext": testAny("e")}
	for _, c := range []Container{web, testContainer("db")} {
		if _, err := s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// A stored record, copied out of the callback, as a Container.
	walk := func(filters ...string) ([]Container, error) {
		var out []Container
		err := s.WalkStored(ctx, func(sc *StoredContainer) error {
			c := Container{ID: string(sc.ID), Image: string(sc.Image), Snapshotter: string(sc.Snapshotter),
				SnapshotKey: string(sc.SnapshotKey), SandboxID: string(sc.SandboxID),
				Runtime: RuntimeInfo{Name: string(sc.RuntimeName)}, CreatedAt: sc.CreatedAt, UpdatedAt: sc.UpdatedAt}
			var err error
			if c.Spec, err = readAny(sc.Spec); err != nil {
				return err
			}
			if c.Runtime.Options, err = readAny(sc.RuntimeOptions); err != nil {
				return err
			}
			sc.Labels(func(k, v []byte) {
				if c.Labels == nil {
					c.Labels = map[string]string{}
				}
				c.Labels[string(k)] = string(v)
			})
			sc.Extensions(func(k, v []byte) {
				if c.Extensions == nil {
					c.Extensions = map[string]*anypb.Any{}
				}
				c.Extensions[string(k)], err = readAny(v)
			})
			out = append(out, c)
			return err
		}, filters...)
		return out, err
	}
	for _, filters := range [][]string{nil, {"id==web"}, {"labels.tier==front"}, {"id==db", "image==nginx"}, {"id==nope"}} {
		got, err := walk(filters...)
		if err != nil {
			t.Fatalf("%q: %v", filters, err)
		}
		want, err := s.List(ctx, filters...)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: walked %d, listed %d", filters, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.ID != w.ID || g.Image != w.Image || g.Snapshotter != w.Snapshotter || g.SnapshotKey != w.SnapshotKey ||
				g.SandboxID != w.SandboxID || g.Runtime.Name != w.Runtime.Name || !proto.Equal(g.Runtime.Options, w.Runtime.Options) ||
				!proto.Equal(g.Spec, w.Spec) || fmt.Sprint(g.Labels) != fmt.Sprint(w.Labels) || len(g.Extensions) != len(w.Extensions) ||
				!g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) {
				t.Fatalf("%q: walked %+v\nlisted %+v", filters, g, w)
			}
			for k, v := range w.Extensions {
				if !proto.Equal(g.Extensions[k], v) {
					t.Fatalf("extension %q: %v, want %v", k, g.Extensions[k], v)
				}
			}
		}
	}
	if err := s.WalkStored(ctx, func(*StoredContainer) error { return nil }, "id=="); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad filter: %v", err)
	}
	stop := errors.New("stop")
	if err := s.WalkStored(ctx, func(*StoredContainer) error { return stop }); err != stop {
		t.Fatalf("callback error: %v", err)
	}
	if err := s.WalkStored(context.Background(), func(*StoredContainer) error { return nil }); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("no namespace: %v", err)
	}

	// Corrupt records fail the walk as they fail Get, naming the container.
	corruptAny := []byte{0x0a, 0x7f}
	for _, tc := range []struct {
		name string
		path [][]byte
		key  []byte
	}{
		{"spec", nil, keySpec},
		{"runtime options", [][]byte{bucketRuntime}, keyOptions},
		{"extension", [][]byte{bucketExtensions}, []byte("ext")},
		{"createdat", nil, keyCreatedAt},
	} {
		t.Run("corrupt "+tc.name, func(t *testing.T) {
			var old []byte
			set := func(v []byte) {
				if err := db.update(ctx, func(tx *bolt.Tx) error {
					b := nsBucket(tx, "default", bucketContainers, append([][]byte{[]byte("web")}, tc.path...)...)
					old = append([]byte(nil), b.Get(tc.key)...)
					return b.Put(tc.key, v)
				}); err != nil {
					t.Fatal(err)
				}
			}
			set(corruptAny)
			defer set(old)
			_, getErr := s.Get(ctx, "web")
			err := s.WalkStored(ctx, func(*StoredContainer) error { return nil })
			if !errors.Is(err, errdefs.ErrUnknown) || !strings.Contains(err.Error(), `container "web"`) || getErr == nil {
				t.Fatalf("walk: %v (get: %v)", err, getErr)
			}
		})
	}
}

func TestReadAny(t *testing.T) {
	marshal := func(a *anypb.Any) []byte {
		b, err := proto.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	spec := marshal(&anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec", Value: []byte(`{"ociVersion":"1.1.0"}`)})
	for _, tc := range []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"nil", nil, false},
		{"empty", []byte{}, false},
		{"spec", spec, false},
		{"type url only", marshal(&anypb.Any{TypeUrl: "t"}), false},
		{"value only", marshal(&anypb.Any{Value: []byte{0, 1, 2}}), false},
		{"fields reversed", append(protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte("v")), marshal(&anypb.Any{TypeUrl: "t"})...), false},
		{"repeated field, last wins", append(marshal(&anypb.Any{TypeUrl: "first"}), marshal(&anypb.Any{TypeUrl: "second"})...), false},
		{"unknown field", protowire.AppendVarint(protowire.AppendTag(spec, 3, protowire.VarintType), 7), false},
		{"type url as varint (an unknown field to proto)", protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7), false},
		{"invalid utf-8 type url", protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff}), true},
		{"truncated", spec[:len(spec)-3], true},
		{"bad tag", []byte{0x80}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAny(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, errdefs.ErrUnknown) {
					t.Fatalf("err %v is not Unknown", err)
				}
				return
			}
			if tc.in == nil {
				if got != nil {
					t.Fatalf("nil value gave %v", got)
				}
				return
			}
			want := &anypb.Any{}
			if err := proto.Unmarshal(tc.in, want); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("readAny = %v, proto.Unmarshal = %v", got, want)
			}
			if len(tc.in) > 0 && len(got.Value) > 0 {
				tc.in[len(tc.in)-1] ^= 0xff // the result must not alias the (bbolt) input
				if !proto.Equal(got, want) {
					t.Fatal("result aliases its input")
				}
			}
		})
	}
}

func TestContainerRootfsOwner(t *testing.T) {
	s := NewContainerStore(newTestDB(t))
	ctx := nsCtx("default")
	for _, id := range []string{"a", "b", "c"} {
		c := testContainer(id)
		c.Snapshotter, c.SnapshotKey = "overlayfs", id+"-snap"
		if _, err := s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		ids         []string
		snapshotter string
		key, wantID string
		wantFound   bool
	}{
		{[]string{"a", "b"}, "overlayfs", "b-snap", "b", true},
		{[]string{"a"}, "overlayfs", "b-snap", "", false},         // b has no task
		{[]string{"a", "b"}, "native", "b-snap", "", false},       // other snapshotter
		{[]string{"gone", "c"}, "overlayfs", "c-snap", "c", true}, // a stale id is skipped
		{nil, "overlayfs", "a-snap", "", false},
	} {
		id, ok, err := s.RootfsOwner(ctx, tc.ids, tc.snapshotter, tc.key)
		if err != nil || ok != tc.wantFound || id != tc.wantID {
			t.Errorf("RootfsOwner(%v, %s, %s) = %q %v %v, want %q %v", tc.ids, tc.snapshotter, tc.key, id, ok, err, tc.wantID, tc.wantFound)
		}
	}
	if _, ok, _ := s.RootfsOwner(nsCtx("other"), []string{"a"}, "overlayfs", "a-snap"); ok {
		t.Error("found in another namespace")
	}
}
