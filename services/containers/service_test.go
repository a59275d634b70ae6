package containers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	api "github.com/berth-containers/berth/api/services/containers/v1"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/namespaces"
)

func newTestService(tb testing.TB) *service {
	tb.Helper()
	db, err := metadata.NewDB(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return &service{local: &local{store: metadata.NewContainerStore(db)}}
}

func testSpec(size int) *anypb.Any {
	return &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec", Value: []byte(strings.Repeat("x", size))}
}

func create(tb testing.TB, s *service, ctx context.Context, c *api.Container) {
	tb.Helper()
	if _, err := s.Create(ctx, &api.CreateContainerRequest{Container: c}); err != nil {
		tb.Fatal(err)
	}
}

// listStream collects what ListStream sends.
type listStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent []*api.Container
	fail error
}

func (l *listStream) Context() context.Context { return l.ctx }
func (l *listStream) Send(m *api.ListContainerMessage) error {
	if l.fail != nil {
		return l.fail
	}
	l.sent = append(l.sent, onTheWire(nil, m).Container)
	return nil
}

// onTheWire is m as a client receives it: marshalled and unmarshalled
// (List's replies carry their containers as encoded bytes).
func onTheWire[M proto.Message](tb testing.TB, m M) M {
	b, err := proto.Marshal(m)
	if err == nil {
		out := m.ProtoReflect().New().Interface().(M)
		if err = proto.Unmarshal(b, out); err == nil {
			return out
		}
	}
	if tb == nil {
		panic(err)
	}
	tb.Fatal(err)
	return m
}

func TestList(t *testing.T) {
	s := newTestService(t)
	ctx := namespaces.WithNamespace(context.Background(), "default")
	web := &api.Container{
		Id: "web", Image: "docker.io/library/nginx:latest", Labels: map[string]string{"tier": "front"},
		Runtime:     &api.Container_Runtime{Name: "io.containerd.runc.v2", Options: &anypb.Any{TypeUrl: "opts", Value: []byte{1}}},
		Spec:        testSpec(100),
		Snapshotter: "overlayfs", SnapshotKey: "web-snap",
		Extensions: map[string]*anypb.Any{"ext": {TypeUrl: "e", Value: []byte("v")}},
	}
	db := &api.Container{Id: "db", Runtime: &api.Container_Runtime{Name: "io.containerd.berth.v2"}, Spec: testSpec(10)}
	create(t, s, ctx, web)
	create(t, s, ctx, db)
	create(t, s, namespaces.WithNamespace(context.Background(), "other"), &api.Container{Id: "elsewhere", Runtime: db.Runtime, Spec: db.Spec})

	for _, tc := range []struct {
		name    string
		filters []string
		want    []*api.Container
		code    codes.Code
	}{
		{"all, in ID order", nil, []*api.Container{db, web}, codes.OK},
		{"by id", []string{"id==web"}, []*api.Container{web}, codes.OK},
		{"by label", []string{"labels.tier==front"}, []*api.Container{web}, codes.OK},
		{"by runtime, either filter", []string{"runtime.name==io.containerd.berth.v2", "image==nope"}, []*api.Container{db}, codes.OK},
		{"none match", []string{"id==nope"}, nil, codes.OK},
		{"bad filter", []string{"id=="}, nil, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(how string, got []*api.Container, err error) {
				t.Helper()
				if status.Code(err) != tc.code {
					t.Fatalf("%s: err %v, want code %v", how, err, tc.code)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("%s: got %d containers, want %d", how, len(got), len(tc.want))
				}
				for i, g := range got {
					w := tc.want[i]
					if g.CreatedAt == nil || g.UpdatedAt == nil {
						t.Fatalf("%s: %s has no timestamps", how, g.Id)
					}
					g = proto.Clone(g).(*api.Container)
					g.CreatedAt, g.UpdatedAt = nil, nil
					if !proto.Equal(g, w) {
						t.Fatalf("%s: got %v\nwant %v", how, g, w)
					}
				}
			}
			r, err := s.List(ctx, &api.ListContainersRequest{Filters: tc.filters})
			if err == nil {
				r = onTheWire(t, r)
			}
			check("List", r.GetContainers(), err)
			ls := &listStream{ctx: ctx}
			err = s.ListStream(&api.ListContainersRequest{Filters: tc.filters}, ls)
			check("ListStream", ls.sent, err)
		})
	}

	t.Run("no namespace", func(t *testing.T) {
		if _, err := s.List(context.Background(), &api.ListContainersRequest{}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("List without namespace: %v", err)
		}
	})
	t.Run("stream send fails", func(t *testing.T) {
		broken := errors.New("broken pipe")
		if err := s.ListStream(&api.ListContainersRequest{}, &listStream{ctx: ctx, fail: broken}); !errors.Is(err, broken) {
			t.Fatalf("ListStream with a failing Send: %v", err)
		}
	})
}

// BenchmarkList is the daemon's share of `ctr c ls`: read every record
// and marshal the reply.
func BenchmarkList(b *testing.B) {
	for _, specSize := range []int{100, 6000} {
		b.Run(fmt.Sprintf("1000x%dB", specSize), func(b *testing.B) {
			s := newTestService(b)
			ctx := namespaces.WithNamespace(context.Background(), "default")
			for i := 0; i < 1000; i++ {
				create(b, s, ctx, &api.Container{
					Id: fmt.Sprintf("list-%04d", i), Image: "docker.io/library/busybox:latest",
					Labels:  map[string]string{"io.containerd.image.config.stop-signal": "SIGTERM"},
					Runtime: &api.Container_Runtime{Name: "io.containerd.runc.v2"}, Spec: testSpec(specSize),
					Snapshotter: "overlayfs", SnapshotKey: fmt.Sprintf("list-%04d", i),
				})
			}
			b.ReportAllocs()
			for b.Loop() {
				r, err := s.List(ctx, &api.ListContainersRequest{})
				if err != nil {
					b.Fatal(err)
				}
				if m, err := proto.Marshal(r); err != nil || len(m) < 1000*specSize {
					b.Fatal(len(m), err)
				}
			}
		})
	}
}

// TestEncodeMatchesToProto: the bytes List encodes from the store are
// exactly what proto gives for toProto of the decoded record (maps in key
// order, as deterministic marshalling and the store both sort them).
func TestEncodeMatchesToProto(t *testing.T) {
	s := newTestService(t)
	ctx := namespaces.WithNamespace(context.Background(), "default")
	rt := &api.Container_Runtime{Name: "io.containerd.runc.v2"}
	for _, c := range []*api.Container{
		{Id: "minimal", Runtime: rt, Spec: &anypb.Any{}},
		{Id: "spec-type-only", Runtime: rt, Spec: &anypb.Any{TypeUrl: "t"}},
		{Id: "everything", Image: "docker.io/library/busybox:latest",
			Labels:      map[string]string{"b": "2", "a": "1", "empty": "", "ünïcode": "✓", "io.containerd.image.config.stop-signal": "SIGTERM"},
			Runtime:     &api.Container_Runtime{Name: "io.containerd.berth.v2", Options: &anypb.Any{TypeUrl: "types.containerd.io/opts", Value: []byte{0, 1, 2}}},
			Spec:        testSpec(6000),
			Snapshotter: "overlayfs", SnapshotKey: "everything-snap",
			Extensions: map[string]*anypb.Any{"z": {TypeUrl: "z", Value: []byte("zz")}, "a": {TypeUrl: "a"}, "empty": {}},
		},
		{Id: "big-varints", Runtime: rt, Spec: testSpec(200000), Labels: map[string]string{"long": strings.Repeat("v", 3000)}},
		{Id: "options-empty", Runtime: &api.Container_Runtime{Name: "r", Options: &anypb.Any{}}, Spec: testSpec(1)},
	} {
		create(t, s, ctx, c)
	}
	l, err := s.encodeList(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.containers) != 5 {
		t.Fatalf("encoded %d containers, want 5", len(l.containers))
	}
	for _, c := range l.containers {
		encoded := c.ProtoReflect().GetUnknown()
		var got api.Container
		if err := proto.Unmarshal(encoded, &got); err != nil {
			t.Fatal(err)
		}
		stored, err := s.local.Get(ctx, got.Id)
		if err != nil {
			t.Fatal(err)
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(toProto(&stored))
		if err != nil {
			t.Fatal(err)
		}
		if string(encoded) != string(want) {
			t.Errorf("%s: encoded\n%x\nwant\n%x", got.Id, encoded, want)
		}
	}
	// And the same through List and ListStream.
	r, err := s.List(ctx, &api.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r = onTheWire(t, r)
	ls := &listStream{ctx: ctx}
	if err := s.ListStream(&api.ListContainersRequest{}, ls); err != nil {
		t.Fatal(err)
	}
	for i, c := range r.Containers {
		stored, _ := s.local.Get(ctx, c.Id)
		if !proto.Equal(c, toProto(&stored)) || !proto.Equal(ls.sent[i], c) {
			t.Errorf("%s: List gave %v\nListStream %v\nwant %v", c.Id, c, ls.sent[i], toProto(&stored))
		}
	}
}
