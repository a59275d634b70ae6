package images

import (
	"context"
	"net"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	api "github.com/berth-containers/berth/api/services/images/v1"
	"github.com/berth-containers/berth/api/types"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
)

type recorder struct {
	mu      sync.Mutex
	topics  []string
	trigger int
	sync    int
}

func (r *recorder) Publish(ctx context.Context, topic string, ev interface{}) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.topics = append(r.topics, topic)
	return nil
}

func newTestService(t *testing.T) (api.ImagesClient, *recorder) {
	t.Helper()
	dir := t.TempDir()
	db, err := metadata.NewDB(filepath.Join(dir, "meta"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rec := &recorder{}
	svc := NewService(metadata.NewImageStore(db), rec)
	svc.SetCollector(func() { rec.trigger++ }, func(context.Context) error { rec.sync++; return nil })
	l, err := net.Listen("unix", filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc.Register(srv)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("unix://"+l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewImagesClient(conn), rec
}

func target(s string) *types.Descriptor {
	return &types.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(s).String(), Size: int64(len(s))}
}

func TestImagesService(t *testing.T) {
	c, rec := newTestService(t)
	ctx := namespaces.WithNamespace(context.Background(), "test")

	creates := []struct {
		img  *api.Image
		want error
	}{
		{&api.Image{Name: "docker.io/library/busybox:latest", Target: target("a"), Labels: map[string]string{"k": "v"}}, nil},
		{&api.Image{Name: "docker.io/library/alpine:3", Target: target("b")}, nil},
		{&api.Image{Name: "docker.io/library/busybox:latest", Target: target("c")}, errdefs.ErrAlreadyExists},
		{&api.Image{Name: "", Target: target("d")}, errdefs.ErrInvalidArgument},
		{&api.Image{Name: "nodigest", Target: &types.Descriptor{MediaType: "x"}}, errdefs.ErrInvalidArgument},
		{nil, errdefs.ErrInvalidArgument},
	}
	for _, tc := range creates {
		resp, err := c.Create(ctx, &api.CreateImageRequest{Image: tc.img})
		if tc.want != nil {
			if !errdefs.Is(errdefs.FromGRPC(err), tc.want) {
				t.Errorf("create %v: want %v, got %v", tc.img.GetName(), tc.want, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("create %s: %v", tc.img.Name, err)
		}
		if resp.Image.CreatedAt == nil || resp.Image.Target.Digest != tc.img.Target.Digest {
			t.Errorf("created %+v", resp.Image)
		}
	}

	got, err := c.Get(ctx, &api.GetImageRequest{Name: "docker.io/library/busybox:latest"})
	if err != nil || got.Image.Labels["k"] != "v" || got.Image.Target.Size != 1 {
		t.Fatalf("get: %v %v", got, err)
	}
	if _, err := c.Get(ctx, &api.GetImageRequest{Name: "missing"}); !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		t.Fatalf("get missing: %v", err)
	}

	lists := []struct {
		filters []string
		want    []string
	}{
		{nil, []string{"docker.io/library/alpine:3", "docker.io/library/busybox:latest"}},
		{[]string{"name==docker.io/library/alpine:3"}, []string{"docker.io/library/alpine:3"}},
		{[]string{"labels.k==v"}, []string{"docker.io/library/busybox:latest"}},
		{[]string{"name~=nothing"}, nil},
	}
	for _, tc := range lists {
		resp, err := c.List(ctx, &api.ListImagesRequest{Filters: tc.filters})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, img := range resp.Images {
			names = append(names, img.Name)
		}
		if !reflect.DeepEqual(names, tc.want) {
			t.Errorf("list %v: %v, want %v", tc.filters, names, tc.want)
		}
	}

	up, err := c.Update(ctx, &api.UpdateImageRequest{
		Image:      &api.Image{Name: "docker.io/library/alpine:3", Labels: map[string]string{"x": "y"}, Target: target("e")},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels.x"}},
	})
	if err != nil || up.Image.Labels["x"] != "y" || up.Image.Target.Digest != target("b").Digest {
		t.Fatalf("update labels: %v %v", up, err)
	}
	up, err = c.Update(ctx, &api.UpdateImageRequest{Image: &api.Image{Name: "docker.io/library/alpine:3", Target: target("e")}})
	if err != nil || up.Image.Target.Digest != target("e").Digest || len(up.Image.Labels) != 0 {
		t.Fatalf("update all: %v %v", up, err)
	}
	if _, err := c.Update(ctx, &api.UpdateImageRequest{Image: &api.Image{Name: "missing", Target: target("e")}}); !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		t.Fatalf("update missing: %v", err)
	}

	if _, err := c.Delete(ctx, &api.DeleteImageRequest{Name: "docker.io/library/alpine:3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, &api.DeleteImageRequest{Name: "docker.io/library/busybox:latest", Sync: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, &api.DeleteImageRequest{Name: "docker.io/library/busybox:latest"}); !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		t.Fatalf("delete twice: %v", err)
	}
	if rec.trigger != 1 || rec.sync != 1 {
		t.Errorf("collections: %d triggered, %d sync", rec.trigger, rec.sync)
	}
	want := []string{"/images/create", "/images/create", "/images/update", "/images/update", "/images/delete", "/images/delete"}
	if !reflect.DeepEqual(rec.topics, want) {
		t.Errorf("events %v, want %v", rec.topics, want)
	}
	// Other namespaces see nothing.
	other := namespaces.WithNamespace(context.Background(), "other")
	if resp, err := c.List(other, &api.ListImagesRequest{}); err != nil || len(resp.Images) != 0 {
		t.Errorf("other namespace: %v %v", resp, err)
	}
}
