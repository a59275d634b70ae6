package client

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	containersapi "github.com/berth-containers/berth/api/services/containers/v1"
	versionapi "github.com/berth-containers/berth/api/services/version/v1"
	"github.com/berth-containers/berth/pkg/errdefs"
)

// fakeContainers serves a fixed list; without stream, ListStream is
// unimplemented, as in daemons older than containerd 1.5.
type fakeContainers struct {
	containersapi.UnimplementedContainersServer
	list    []*containersapi.Container
	stream  bool
	err     error    // from both
	listErr error    // from List only
	calls   []string // method, namespace and filters of each call
}

func (f *fakeContainers) record(ctx context.Context, method string, r *containersapi.ListContainersRequest) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.calls = append(f.calls, fmt.Sprintf("%s %s %q", method, md.Get("containerd-namespace"), r.Filters))
}

func (f *fakeContainers) List(ctx context.Context, r *containersapi.ListContainersRequest) (*containersapi.ListContainersResponse, error) {
	f.record(ctx, "List", r)
	if f.listErr != nil {
		return nil, f.listErr
	}
	if f.err != nil {
		return nil, f.err
	}
	return &containersapi.ListContainersResponse{Containers: f.list}, nil
}

func (f *fakeContainers) ListStream(r *containersapi.ListContainersRequest, s containersapi.Containers_ListStreamServer) error {
	if !f.stream {
		return f.UnimplementedContainersServer.ListStream(r, s)
	}
	f.record(s.Context(), "ListStream", r)
	if f.err != nil {
		return f.err
	}
	for _, c := range f.list {
		if err := s.Send(&containersapi.ListContainerMessage{Container: c}); err != nil {
			return err
		}
	}
	return nil
}

type fakeVersion struct {
	versionapi.UnimplementedVersionServer
}

func (fakeVersion) Version(context.Context, *emptypb.Empty) (*versionapi.VersionResponse, error) {
	return &versionapi.VersionResponse{Version: "test"}, nil
}

func newFakeContainersClient(t *testing.T, f *fakeContainers) *Client {
	t.Helper()
	return newFakeClient(t, func(srv *grpc.Server) {
		containersapi.RegisterContainersServer(srv, f)
		versionapi.RegisterVersionServer(srv, fakeVersion{})
	}, WithDefaultNamespace("test"))
}

// newFakeClient connects a Client to a gRPC server on a temp unix socket
// with the fake services register adds.
func newFakeClient(t *testing.T, register func(*grpc.Server), opts ...Opt) *Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "bcl-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("unix", filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	register(srv)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	c, err := New(l.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testRecords are containers with every field set in some of them.
func testRecords(n int) []*containersapi.Container {
	var out []*containersapi.Container
	for i := 0; i < n; i++ {
		c := &containersapi.Container{
			Id:      fmt.Sprintf("c-%04d", i),
			Runtime: &containersapi.Container_Runtime{Name: "io.containerd.runc.v2"},
			Spec:    &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec", Value: []byte(strings.Repeat("{}", 100))},
		}
		switch i % 3 {
		case 0:
			c.Image = "docker.io/library/busybox:latest"
			c.Labels = map[string]string{"a": "b", "image": "not this one"}
		case 1:
			c.Runtime = &containersapi.Container_Runtime{Name: "io.containerd.berth.v2", Options: &anypb.Any{TypeUrl: "opts", Value: []byte{1, 2}}}
			c.Snapshotter, c.SnapshotKey = "overlayfs", c.Id
			c.CreatedAt, c.UpdatedAt = timestamppb.Now(), timestamppb.Now()
			c.Extensions = map[string]*anypb.Any{"x": {TypeUrl: "x", Value: []byte("y")}}
		}
		out = append(out, c)
	}
	return out
}

func summariesOf(cs []*containersapi.Container) []ContainerSummary {
	var out []ContainerSummary
	for _, c := range cs {
		out = append(out, ContainerSummary{ID: c.Id, Image: c.Image, Runtime: c.GetRuntime().GetName()})
	}
	return out
}

func TestContainerSummaries(t *testing.T) {
	tooBig := status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max")
	for _, tc := range []struct {
		name      string
		n         int
		specSize  int
		stream    bool
		filters   []string
		listErr   error // from List only
		err       error // from both
		wantCalls []string
		wantErr   func(error) bool
	}{
		{name: "List", n: 50, stream: true, filters: []string{"image==x", "id==y"},
			wantCalls: []string{`List [test] ["image==x" "id==y"]`}},
		{name: "List, nothing", stream: true, wantCalls: []string{`List [test] []`}},
		{name: "more than 16 MiB: ListStream", n: 60, specSize: 300 << 10, stream: true,
			wantCalls: []string{`List [test] []`, `ListStream [test] []`}},
		{name: "daemon cannot send it: ListStream", n: 50, stream: true, listErr: tooBig, filters: []string{"labels.a"},
			wantCalls: []string{`List [test] ["labels.a"]`, `ListStream [test] ["labels.a"]`}},
		{name: "too big and no ListStream", n: 5, listErr: tooBig,
			wantCalls: []string{`List [test] []`}, wantErr: errdefs.IsNotImplemented},
		{name: "List error", stream: true, err: errdefs.ToGRPC(fmt.Errorf("no: %w", errdefs.ErrInvalidArgument)),
			wantCalls: []string{`List [test] []`}, wantErr: errdefs.IsInvalidArgument},
		{name: "ListStream error", stream: true, listErr: tooBig, err: errdefs.ToGRPC(fmt.Errorf("no: %w", errdefs.ErrNotFound)),
			wantCalls: []string{`List [test] []`, `ListStream [test] []`}, wantErr: errdefs.IsNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := testRecords(tc.n)
			for _, c := range list {
				if tc.specSize > 0 {
					c.Spec.Value = make([]byte, tc.specSize)
				}
			}
			f := &fakeContainers{list: list, stream: tc.stream, listErr: tc.listErr, err: tc.err}
			c := newFakeContainersClient(t, f)
			got, err := c.ContainerSummaries(context.Background(), tc.filters...)
			if tc.wantErr != nil {
				if !tc.wantErr(err) || got != nil {
					t.Fatalf("got %d, err = %v", len(got), err)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if want := summariesOf(list); !reflect.DeepEqual(got, want) && len(got)+len(want) > 0 {
				t.Fatalf("got %v\nwant %v", got, want)
			}
			if !reflect.DeepEqual(f.calls, tc.wantCalls) {
				t.Fatalf("calls %q, want %q", f.calls, tc.wantCalls)
			}
		})
	}
}

func TestSummaryDecoder(t *testing.T) {
	marshal := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	records := testRecords(6)
	resp := marshal(&containersapi.ListContainersResponse{Containers: records})
	// Fields a newer daemon may add (sandbox = 11) and ones of every wire
	// type are skipped.
	extra := protowire.AppendTag(marshal(records[0]), 11, protowire.BytesType)
	extra = protowire.AppendString(extra, "sandbox")
	extra = protowire.AppendVarint(protowire.AppendTag(extra, 12, protowire.VarintType), 300)
	extra = protowire.AppendFixed32(protowire.AppendTag(extra, 13, protowire.Fixed32Type), 1)
	extra = protowire.AppendFixed64(protowire.AppendTag(extra, 14, protowire.Fixed64Type), 1)
	withExtra := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), extra)

	for _, tc := range []struct {
		name    string
		in      []byte
		want    []ContainerSummary
		wantErr bool
	}{
		{"empty", nil, nil, false},
		{"response", resp, summariesOf(records), false},
		{"one message", marshal(&containersapi.ListContainerMessage{Container: records[1]}), summariesOf(records[1:2]), false},
		{"empty container", marshal(&containersapi.ListContainerMessage{Container: &containersapi.Container{}}), []ContainerSummary{{}}, false},
		{"unknown fields", withExtra, summariesOf(records[:1]), false},
		{"truncated", resp[:len(resp)-5], nil, true},
		{"bad tag", []byte{0x80}, nil, true},
		{"bad nested length", []byte{0x0a, 0x02, 0x0a, 0x7f}, nil, true},
		{"field past its container", []byte{0x0a, 0x02, 0x0a, 0x03, 'a', 'b', 'c'}, nil, true},
		{"varint past its container", []byte{0x0a, 0x01, 0x10, 0x05}, nil, true},
		{"group", []byte{0x0a, 0x01, 0x0b}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(how string, bufs [][]byte) {
				t.Helper()
				var d summaryDecoder
				err := d.decode(newPieces(bufs))
				if (err != nil) != tc.wantErr {
					t.Fatalf("%s: err = %v, want error %v", how, err, tc.wantErr)
				}
				if err == nil && !reflect.DeepEqual(d.out, tc.want) {
					t.Fatalf("%s: got %v\nwant %v", how, d.out, tc.want)
				}
			}
			check("one piece", [][]byte{tc.in})
			// As gRPC hands it over: in pieces, split anywhere.
			var bytewise [][]byte
			for i := range tc.in {
				bytewise = append(bytewise, tc.in[i:i+1])
			}
			check("byte by byte", bytewise)
			for i := 0; i <= len(tc.in); i += 1 + len(tc.in)/500 {
				check(fmt.Sprintf("split at %d", i), [][]byte{tc.in[:i], nil, tc.in[i:]})
			}
		})
	}
}

// TestSummaryStringsOwnTheirBytes: the decoded strings must not alias the
// receive buffer, which goes back to a pool.
func TestSummaryStringsOwnTheirBytes(t *testing.T) {
	b, err := proto.Marshal(&containersapi.ListContainerMessage{Container: testRecords(1)[0]})
	if err != nil {
		t.Fatal(err)
	}
	var d summaryDecoder
	if err := d.decodeList(b); err != nil {
		t.Fatal(err)
	}
	want := d.out[0]
	for i := range b {
		b[i] = 'X'
	}
	if d.out[0] != want || want.ID != "c-0000" {
		t.Fatalf("summary changed with its input: %+v", d.out[0])
	}
}
