package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	api "github.com/berth-containers/berth/api/services/content/v1"
	localstore "github.com/berth-containers/berth/content/local"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
)

type recorder struct {
	mu     sync.Mutex
	topics []string
}

func (r *recorder) Publish(ctx context.Context, topic string, ev interface{}) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.topics = append(r.topics, topic)
	return nil
}

// newTestService serves the content service over the namespaced store on a
// temp unix socket and returns a client for it.
func newTestService(t *testing.T) (api.ContentClient, *recorder, *int) {
	t.Helper()
	dir := t.TempDir()
	backend, err := localstore.NewStore(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := metadata.NewDB(filepath.Join(dir, "meta"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rec := &recorder{}
	collects := new(int)
	svc := NewService(metadata.NewContentStore(db, backend), rec, func() { *collects++ })
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc.Register(srv)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewContentClient(conn), rec, collects
}

func testCtx() context.Context {
	return namespaces.WithNamespace(context.Background(), "test")
}

// writeAll runs one Write session of the given requests and returns the
// responses and the error that ended it.
func writeAll(ctx context.Context, c api.ContentClient, reqs ...*api.WriteContentRequest) ([]*api.WriteContentResponse, error) {
	stream, err := c.Write(ctx)
	if err != nil {
		return nil, err
	}
	var out []*api.WriteContentResponse
	for _, r := range reqs {
		if err := stream.Send(r); err != nil {
			break // the error comes with Recv
		}
		resp, err := stream.Recv()
		if err != nil {
			return out, errdefs.FromGRPC(err)
		}
		out = append(out, resp)
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return out, errdefs.FromGRPC(err)
	}
	return out, nil
}

func readAll(ctx context.Context, c api.ContentClient, dgst digest.Digest, off, size int64) ([]byte, error) {
	stream, err := c.Read(ctx, &api.ReadContentRequest{Digest: dgst.String(), Offset: off, Size: size})
	if err != nil {
		return nil, err
	}
	if off < 0 {
		off = 0
	}
	var buf bytes.Buffer
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return buf.Bytes(), nil
		}
		if err != nil {
			return nil, errdefs.FromGRPC(err)
		}
		if resp.Offset != off+int64(buf.Len()) {
			return nil, errors.New("read response at wrong offset")
		}
		buf.Write(resp.Data)
	}
}

func TestWriteSessions(t *testing.T) {
	data := bytes.Repeat([]byte("berth"), 1000)
	dgst := digest.FromBytes(data)
	total := int64(len(data))
	tests := []struct {
		name    string
		reqs    []*api.WriteContentRequest
		wantErr error
		commit  bool
	}{
		{
			name: "stat write commit",
			reqs: []*api.WriteContentRequest{
				{Action: api.WriteAction_STAT, Ref: "a", Total: total, Expected: dgst.String()},
				{Action: api.WriteAction_WRITE, Ref: "a", Offset: 0, Data: data[:100]},
				{Action: api.WriteAction_WRITE, Ref: "a", Offset: 100, Data: data[100:]},
				{Action: api.WriteAction_COMMIT, Ref: "a", Offset: total, Total: total, Expected: dgst.String(), Labels: map[string]string{"k": "v"}},
			},
			commit: true,
		},
		{
			name: "one commit with all data",
			reqs: []*api.WriteContentRequest{
				{Action: api.WriteAction_COMMIT, Ref: "b", Data: data, Total: total, Expected: dgst.String()},
			},
			commit: true,
		},
		{
			name: "rewind rewrites",
			reqs: []*api.WriteContentRequest{
				{Action: api.WriteAction_WRITE, Ref: "c", Data: []byte("garbage garbage")},
				{Action: api.WriteAction_WRITE, Ref: "c", Offset: 0, Data: data},
				{Action: api.WriteAction_COMMIT, Ref: "c", Offset: total, Total: total, Expected: dgst.String()},
			},
			commit: true,
		},
		{
			name:    "no ref",
			reqs:    []*api.WriteContentRequest{{Action: api.WriteAction_STAT}},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:    "bad digest",
			reqs:    []*api.WriteContentRequest{{Action: api.WriteAction_STAT, Ref: "d", Expected: "sha256:nope"}},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name: "hole",
			reqs: []*api.WriteContentRequest{
				{Action: api.WriteAction_WRITE, Ref: "e", Offset: 10, Data: data},
			},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name: "wrong digest",
			reqs: []*api.WriteContentRequest{
				{Action: api.WriteAction_COMMIT, Ref: "f", Data: data[1:], Expected: dgst.String()},
			},
			wantErr: errdefs.ErrFailedPrecondition,
		},
		{
			name: "other ref",
			reqs: []*api.WriteContentRequest{
				{Action: api.WriteAction_STAT, Ref: "g"},
				{Action: api.WriteAction_STAT, Ref: "h"},
			},
			wantErr: errdefs.ErrInvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, _ := newTestService(t)
			ctx := testCtx()
			resps, err := writeAll(ctx, c, tt.reqs...)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("want %v, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			last := resps[len(resps)-1]
			if tt.commit {
				if last.Digest != dgst.String() || last.Offset != total {
					t.Fatalf("commit response %+v", last)
				}
				got, err := readAll(ctx, c, dgst, 0, 0)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("read back: %v (%d bytes)", err, len(got))
				}
			}
		})
	}
}

// TestWriteRepliesCarryDigest: every reply names the digest of the bytes
// written so far, as containerd's server does; containerd's client reports
// the last one as the blob's when its commit finds the blob already there.
func TestWriteRepliesCarryDigest(t *testing.T) {
	data := bytes.Repeat([]byte("berth"), 100)
	total := int64(len(data))
	c, _, _ := newTestService(t)
	ctx := testCtx()
	resps, err := writeAll(ctx, c,
		&api.WriteContentRequest{Action: api.WriteAction_STAT, Ref: "a", Total: total},
		&api.WriteContentRequest{Action: api.WriteAction_WRITE, Ref: "a", Data: data[:7]},
		&api.WriteContentRequest{Action: api.WriteAction_STAT, Ref: "a"},
		&api.WriteContentRequest{Action: api.WriteAction_WRITE, Ref: "a", Offset: 7, Data: data[7:]},
		&api.WriteContentRequest{Action: api.WriteAction_COMMIT, Ref: "a", Offset: total, Total: total},
	)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{0, 7, 7, total, total} {
		if d := digest.FromBytes(data[:want]).String(); resps[i].Digest != d || resps[i].Offset != want {
			t.Fatalf("reply %d: digest %q offset %d, want %q at %d", i, resps[i].Digest, resps[i].Offset, d, want)
		}
	}
}

func TestResumeAcrossSessions(t *testing.T) {
	c, _, _ := newTestService(t)
	ctx := testCtx()
	data := []byte("0123456789abcdef")
	dgst := digest.FromBytes(data)
	if _, err := writeAll(ctx, c, &api.WriteContentRequest{Action: api.WriteAction_WRITE, Ref: "r", Total: 16, Expected: dgst.String(), Data: data[:6]}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx, &api.StatusRequest{Ref: "r"})
	if err != nil || st.Status.Offset != 6 || st.Status.Total != 16 || st.Status.Expected != dgst.String() {
		t.Fatalf("status %+v %v", st, err)
	}
	resps, err := writeAll(ctx, c,
		&api.WriteContentRequest{Action: api.WriteAction_STAT, Ref: "r"},
		&api.WriteContentRequest{Action: api.WriteAction_COMMIT, Ref: "r", Offset: 6, Data: data[6:], Total: 16, Expected: dgst.String()})
	if err != nil {
		t.Fatal(err)
	}
	if resps[0].Offset != 6 || resps[1].Digest != dgst.String() {
		t.Fatalf("responses %+v", resps)
	}
	if l, err := c.ListStatuses(ctx, &api.ListStatusesRequest{}); err != nil || len(l.Statuses) != 0 {
		t.Fatalf("statuses after commit: %v %v", l, err)
	}
	// The same bytes again: the blob exists.
	_, err = writeAll(ctx, c, &api.WriteContentRequest{Action: api.WriteAction_STAT, Ref: "again", Expected: dgst.String()})
	if !errdefs.IsAlreadyExists(err) {
		t.Fatalf("rewrite: %v", err)
	}
}

func TestAbortAndStatuses(t *testing.T) {
	c, _, _ := newTestService(t)
	ctx := testCtx()
	for _, ref := range []string{"one", "two"} {
		if _, err := writeAll(ctx, c, &api.WriteContentRequest{Action: api.WriteAction_WRITE, Ref: ref, Data: []byte(ref)}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := c.ListStatuses(ctx, &api.ListStatusesRequest{Filters: []string{"ref==two"}})
	if err != nil || len(l.Statuses) != 1 || l.Statuses[0].Ref != "two" || l.Statuses[0].Offset != 3 {
		t.Fatalf("filtered statuses: %v %v", l, err)
	}
	if _, err := c.Abort(ctx, &api.AbortRequest{Ref: "one"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx, &api.StatusRequest{Ref: "one"}); !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		t.Fatalf("status after abort: %v", err)
	}
	if _, err := c.Abort(ctx, &api.AbortRequest{Ref: "one"}); !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		t.Fatalf("abort twice: %v", err)
	}
	// Ingests are per namespace.
	other := namespaces.WithNamespace(context.Background(), "other")
	if l, err := c.ListStatuses(other, &api.ListStatusesRequest{}); err != nil || len(l.Statuses) != 0 {
		t.Fatalf("other namespace statuses: %v %v", l, err)
	}
}

func TestInfoListReadUpdateDelete(t *testing.T) {
	c, rec, collects := newTestService(t)
	ctx := testCtx()
	blobs := map[digest.Digest][]byte{}
	for i := 0; i < 110; i++ { // more than one List batch
		data := bytes.Repeat([]byte{byte(i)}, i+1)
		dgst := digest.FromBytes(data)
		blobs[dgst] = data
		if _, err := writeAll(ctx, c, &api.WriteContentRequest{Action: api.WriteAction_COMMIT, Ref: dgst.Encoded(), Data: data, Expected: dgst.String()}); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := c.List(ctx, &api.ListContentRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range resp.Info {
			if int64(len(blobs[digest.Digest(info.Digest)])) != info.Size {
				t.Fatalf("listed %s size %d", info.Digest, info.Size)
			}
			n++
		}
	}
	if n != len(blobs) {
		t.Fatalf("listed %d of %d", n, len(blobs))
	}

	big := bytes.Repeat([]byte("0123456789"), 250000) // 2.5 MB: several read chunks
	dgst := digest.FromBytes(big)
	if _, err := writeAll(ctx, c, &api.WriteContentRequest{Action: api.WriteAction_COMMIT, Ref: "big", Data: big}); err != nil {
		t.Fatal(err)
	}
	reads := []struct {
		off, size int64
		want      []byte
		err       error
	}{
		{0, 0, big, nil},
		{-5, 0, big, nil},
		{10, 20, big[10:30], nil},
		{100, smallRead - 1, big[100 : 100+smallRead-1], nil}, // own buffer
		{100, smallRead, big[100 : 100+smallRead], nil},       // pooled buffer
		{1<<20 - 3, 1 << 20, big[1<<20-3 : 2<<20-3], nil},
		{int64(len(big)) - 4, 100, big[len(big)-4:], nil},
		{int64(len(big)), 0, nil, nil},
	}
	for _, r := range reads {
		got, err := readAll(ctx, c, dgst, r.off, r.size)
		if r.err != nil {
			if !errors.Is(err, r.err) {
				t.Errorf("read %d+%d: want %v, got %v", r.off, r.size, r.err, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, r.want) {
			t.Errorf("read %d+%d: %v, %d bytes, want %d", r.off, r.size, err, len(got), len(r.want))
		}
	}
	// Past the end: OutOfRange, as containerd's content server answers.
	rs, err := c.Read(ctx, &api.ReadContentRequest{Digest: dgst.String(), Offset: int64(len(big)) + 1})
	if err == nil {
		_, err = rs.Recv()
	}
	if status.Code(err) != codes.OutOfRange {
		t.Errorf("read past the end: %v, want OutOfRange", err)
	}
	if _, err := readAll(ctx, c, digest.FromString("missing"), 0, 0); !errdefs.IsNotFound(err) {
		t.Errorf("read missing: %v", err)
	}

	up, err := c.Update(ctx, &api.UpdateRequest{
		Info:       &api.Info{Digest: dgst.String(), Labels: map[string]string{"a": "1", "b": "2"}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels.a"}},
	})
	if err != nil || len(up.Info.Labels) != 1 || up.Info.Labels["a"] != "1" {
		t.Fatalf("update: %v %v", up, err)
	}
	info, err := c.Info(ctx, &api.InfoRequest{Digest: dgst.String()})
	if err != nil || info.Info.Size != int64(len(big)) || info.Info.Labels["a"] != "1" {
		t.Fatalf("info: %v %v", info, err)
	}
	if _, err := c.Info(ctx, &api.InfoRequest{Digest: "bogus"}); !errdefs.IsInvalidArgument(errdefs.FromGRPC(err)) {
		t.Fatalf("info bogus: %v", err)
	}
	if _, err := c.Delete(ctx, &api.DeleteContentRequest{Digest: dgst.String()}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Info(ctx, &api.InfoRequest{Digest: dgst.String()}); !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		t.Fatalf("info after delete: %v", err)
	}
	if _, err := c.Delete(ctx, &api.DeleteContentRequest{Digest: dgst.String()}); !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		t.Fatalf("delete twice: %v", err)
	}
	if len(rec.topics) != 1 || rec.topics[0] != "/content/delete" || *collects != 1 {
		t.Fatalf("events %v, collects %d", rec.topics, *collects)
	}
}
