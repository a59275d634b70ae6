package diff

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	api "github.com/berth-containers/berth/api/services/diff/v1"
	"github.com/berth-containers/berth/api/types"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/content/local"
	"github.com/berth-containers/berth/diff/walking"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots/native"
)

func layer(t *testing.T, files map[string]string) (gz []byte, diffID digest.Digest) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	tw.Close()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw.Bytes())
	zw.Close()
	return buf.Bytes(), digest.FromBytes(raw.Bytes())
}

func protoMounts(ms []mount.Mount) []*types.Mount {
	var out []*types.Mount
	for _, m := range ms {
		out = append(out, &types.Mount{Type: m.Type, Source: m.Source, Options: m.Options})
	}
	return out
}

func TestApplyAndDiff(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("applying onto mounts needs root")
	}
	dir := t.TempDir()
	cs, err := local.NewStore(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := native.New(filepath.Join(dir, "native"))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	svc := NewService(walking.New(cs))
	l, err := net.Listen("unix", filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc.Register(srv)
	go srv.Serve(l)
	defer srv.Stop()
	conn, err := grpc.NewClient("unix://"+l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := api.NewDiffClient(conn)
	ctx := context.Background()

	gz, diffID := layer(t, map[string]string{"hello.txt": "hello\n"})
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz), Size: int64(len(gz))}
	w, err := cs.Writer(ctx, content.WithRef("layer"), content.WithDescriptor(desc))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(gz)
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatal(err)
	}
	w.Close()
	mounts, err := sn.Prepare(ctx, "active", "")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		req  *api.ApplyRequest
		want error
	}{
		{"no descriptor", &api.ApplyRequest{Mounts: protoMounts(mounts)}, errdefs.ErrInvalidArgument},
		{"missing blob", &api.ApplyRequest{Diff: &types.Descriptor{MediaType: desc.MediaType, Digest: digest.FromString("x").String(), Size: 1}, Mounts: protoMounts(mounts)}, errdefs.ErrNotFound},
		{"ok", &api.ApplyRequest{Diff: &types.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest.String(), Size: desc.Size}, Mounts: protoMounts(mounts)}, nil},
	}
	for _, tt := range tests {
		resp, err := c.Apply(ctx, tt.req)
		if tt.want != nil {
			if !errdefs.Is(errdefs.FromGRPC(err), tt.want) {
				t.Errorf("%s: want %v, got %v", tt.name, tt.want, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if resp.Applied.Digest != diffID.String() {
			t.Fatalf("applied diff ID %s, want %s", resp.Applied.Digest, diffID)
		}
	}
	if b, err := os.ReadFile(filepath.Join(mounts[0].Source, "hello.txt")); err != nil || string(b) != "hello\n" {
		t.Fatalf("applied file: %q %v", b, err)
	}

	empty, err := sn.View(ctx, "empty", "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Diff(ctx, &api.DiffRequest{Left: protoMounts(empty), Right: protoMounts(mounts), MediaType: ocispec.MediaTypeImageLayerGzip, Ref: "diff-1"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cs.Info(ctx, digest.Digest(d.Diff.Digest))
	if err != nil || info.Size != d.Diff.Size {
		t.Fatalf("computed layer not stored: %+v %v", info, err)
	}
}
