package client

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images/testimage"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/services/server"
	"github.com/berth-containers/berth/snapshots"

	_ "github.com/berth-containers/berth/services/content"
	_ "github.com/berth-containers/berth/services/diff"
	_ "github.com/berth-containers/berth/services/images"
	_ "github.com/berth-containers/berth/services/leases"
	_ "github.com/berth-containers/berth/services/namespaces"
	_ "github.com/berth-containers/berth/services/snapshots"
	_ "github.com/berth-containers/berth/services/storage"
	_ "github.com/berth-containers/berth/services/version"
)

// newTestDaemon serves the storage services from an in-process server on
// a temp root and socket and returns a client for it and the root.
func newTestDaemon(t *testing.T) (*Client, string) {
	t.Helper()
	base := t.TempDir()
	state, err := os.MkdirTemp("", "bc-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	cfg := server.DefaultConfig()
	cfg.Root = filepath.Join(base, "root")
	cfg.State = state
	cfg.GRPC.Address = filepath.Join(state, "s.sock")
	// Only what the test asks for: no scheduled collections in between.
	cfg.Plugins["io.containerd.gc.v1.scheduler"] = map[string]interface{}{"period": "0s", "startup_delay": "1h", "schedule_delay": "1h"}
	ctx := context.Background()
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
	})
	c, err := New(cfg.GRPC.Address, WithDefaultSnapshotter("native"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, cfg.Root
}

func buildArchive(t *testing.T, opts testimage.Options) ([]byte, testimage.Image) {
	t.Helper()
	var buf bytes.Buffer
	opts.TempDir = t.TempDir()
	img, err := testimage.Build(context.Background(), &buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), img
}

func smallImage(name string, layers int) testimage.Options {
	opts := testimage.Options{Name: name, Config: ocispec.ImageConfig{Cmd: []string{"/bin/true"}}}
	for i := 0; i < layers; i++ {
		opts.Layers = append(opts.Layers, testimage.Layer{Files: []testimage.File{
			testimage.Dir("data", 0o755),
			testimage.Regular("data/layer"+string(rune('0'+i)), "layer contents", 0o644),
			testimage.RandomFile("data/random"+string(rune('0'+i)), 300<<10, uint64(i+1)),
		}})
	}
	return opts
}

// blobsOnDisk counts the committed blobs in the backend store.
func blobsOnDisk(t *testing.T, root string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "io.containerd.content.v1.content", "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestImportListUnpackDeleteGC(t *testing.T) {
	c, root := newTestDaemon(t)
	ctx := namespaces.WithNamespace(context.Background(), "test")
	data, built := buildArchive(t, smallImage("docker.io/library/sample:1", 3))

	var progress []string
	imgs, err := c.Import(ctx, bytes.NewReader(data), WithUnpackProgress(func(img ImageInfo, done bool, err error) {
		progress = append(progress, img.Name)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Name != "docker.io/library/sample:1" || imgs[0].Target.Digest != built.Manifest.Digest {
		t.Fatalf("imported %+v, built manifest %s", imgs, built.Manifest.Digest)
	}
	if len(progress) != 2 {
		t.Fatalf("progress calls %v", progress)
	}

	list, err := c.ListImages(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	img := list[0]
	if ok, err := img.IsUnpacked(ctx, "native"); err != nil || !ok {
		t.Fatalf("unpacked into native: %v %v", ok, err)
	}
	if ok, err := img.IsUnpacked(ctx, ""); err != nil || !ok {
		t.Fatalf("unpacked into the default: %v %v", ok, err)
	}
	rootfs, err := img.RootFS(ctx)
	if err != nil || len(rootfs) != 3 || rootfs[2] != built.DiffIDs[2] {
		t.Fatalf("rootfs %v %v", rootfs, err)
	}
	size, err := img.Usage(ctx)
	var want int64 = built.Manifest.Size + built.Config.Size
	for _, l := range built.Layers {
		want += l.Size
	}
	if err != nil || size != want {
		t.Fatalf("usage %d, want %d: %v", size, want, err)
	}
	st, err := img.Check(ctx)
	if err != nil || !st.Available || len(st.Missing) != 0 || len(st.Present) != 4 {
		t.Fatalf("check %+v %v", st, err)
	}

	// The unpacked top snapshot has every layer's file.
	sn := c.SnapshotService("native")
	info, err := sn.Stat(ctx, built.ChainID.String())
	if err != nil || info.Parent == "" {
		t.Fatalf("top snapshot: %+v %v", info, err)
	}
	mounts, err := sn.View(ctx, "inspect", built.ChainID.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"data/layer0", "data/layer1", "data/layer2", "data/random2"} {
		if _, err := os.Stat(filepath.Join(mounts[0].Source, f)); err != nil {
			t.Errorf("unpacked file: %v", err)
		}
	}
	if err := sn.Remove(ctx, "inspect"); err != nil {
		t.Fatal(err)
	}

	// Export and import again, into another namespace: same image.
	var out bytes.Buffer
	if err := c.Export(ctx, &out, []string{"docker.io/library/sample:1"}); err != nil {
		t.Fatal(err)
	}
	other := namespaces.WithNamespace(context.Background(), "other")
	again, err := c.Import(other, &out, WithoutUnpack())
	if err != nil || len(again) != 1 || again[0].Target.Digest != built.Manifest.Digest {
		t.Fatalf("re-import: %+v %v", again, err)
	}
	if ok, _ := NewImage(c, again[0]).IsUnpacked(other, "native"); ok {
		t.Fatal("unpacked despite WithoutUnpack")
	}
	// Importing again updates the record in place.
	if _, err := c.Import(other, bytes.NewReader(data), WithoutUnpack()); err != nil {
		t.Fatal(err)
	}

	// Deleting in both namespaces and collecting frees blobs and snapshots.
	before := blobsOnDisk(t, root)
	if before != 5 { // manifest, config, 3 layers
		t.Fatalf("%d blobs on disk, want 5", before)
	}
	if err := c.ImageService().Delete(other, "docker.io/library/sample:1", true); err != nil {
		t.Fatal(err)
	}
	if n := blobsOnDisk(t, root); n != before {
		t.Fatalf("blobs still used by namespace test went: %d", n)
	}
	if err := c.ImageService().Delete(ctx, "docker.io/library/sample:1", true); err != nil {
		t.Fatal(err)
	}
	if n := blobsOnDisk(t, root); n != 0 {
		t.Fatalf("%d blobs left after delete and GC", n)
	}
	left := 0
	if err := sn.Walk(ctx, func(context.Context, snapshots.Info) error { left++; return nil }); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d snapshots left after delete and GC", left)
	}
	if _, err := c.GetImage(ctx, "docker.io/library/sample:1"); !errdefs.IsNotFound(err) {
		t.Fatalf("get deleted: %v", err)
	}
}

func TestRemoteContentStore(t *testing.T) {
	c, _ := newTestDaemon(t)
	ctx := namespaces.WithNamespace(context.Background(), "test")
	cs := c.ContentStore()
	data := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB: several chunks
	dgst := digest.FromBytes(data)

	// Write half, close, resume from the offset and commit.
	w, err := cs.Writer(ctx, content.WithRef("blob"), content.WithDescriptor(ocispec.Descriptor{Size: int64(len(data)), Digest: dgst}))
	if err != nil {
		t.Fatal(err)
	}
	half := len(data) / 2
	if _, err := w.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := cs.Status(ctx, "blob")
	if err != nil || st.Offset != int64(half) || st.Total != int64(len(data)) {
		t.Fatalf("status after close: %+v %v", st, err)
	}
	w, err = cs.Writer(ctx, content.WithRef("blob"), content.WithDescriptor(ocispec.Descriptor{Size: int64(len(data)), Digest: dgst}))
	if err != nil {
		t.Fatal(err)
	}
	ws, err := w.Status()
	if err != nil || ws.Offset != int64(half) {
		t.Fatalf("resumed status %+v %v", ws, err)
	}
	if _, err := w.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, int64(len(data)), dgst, content.WithLabels(map[string]string{"k": "v"})); err != nil {
		t.Fatal(err)
	}
	if w.Digest() != dgst {
		t.Fatalf("digest after commit %s", w.Digest())
	}
	w.Close()

	// A fresh writer hashes what it writes; Truncate rewinds it.
	w, err = cs.Writer(ctx, content.WithRef("small"))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("wrong"))
	if err := w.Truncate(0); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("right"))
	if w.Digest() != digest.FromString("right") {
		t.Fatalf("digest %s", w.Digest())
	}
	if err := w.Commit(ctx, 5, digest.FromString("right")); err != nil {
		t.Fatal(err)
	}
	w.Close()

	// Many chunks in flight at once (more than writeAhead, with odd
	// write sizes) arrive whole and in order.
	big := make([]byte, 11<<20+12345)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	w, err = cs.Writer(ctx, content.WithRef("big"), content.WithDescriptor(ocispec.Descriptor{Size: int64(len(big)), Digest: digest.FromBytes(big)}))
	if err != nil {
		t.Fatal(err)
	}
	for rest := big; len(rest) > 0; {
		n := min(len(rest), 77777)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Commit(ctx, int64(len(big)), digest.FromBytes(big)); err != nil {
		t.Fatalf("commit of a pipelined write: %v", err)
	}
	w.Close()

	// Writing what exists is AlreadyExists, as content stores say.
	if _, err := cs.Writer(ctx, content.WithRef("again"), content.WithDescriptor(ocispec.Descriptor{Digest: dgst})); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("rewrite: %v", err)
	}

	info, err := cs.Info(ctx, dgst)
	if err != nil || info.Size != int64(len(data)) || info.Labels["k"] != "v" {
		t.Fatalf("info %+v %v", info, err)
	}
	ra, err := cs.ReaderAt(ctx, ocispec.Descriptor{Digest: dgst})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	for _, r := range []struct{ off, n int }{{0, 10}, {5, 100}, {1<<20 - 1, 3}, {len(data) - 7, 7}, {0, len(data)}} {
		p := make([]byte, r.n)
		if n, err := ra.ReadAt(p, int64(r.off)); n != r.n || err != nil || !bytes.Equal(p, data[r.off:r.off+r.n]) {
			t.Fatalf("ReadAt(%d, %d): %d %v", r.off, r.n, n, err)
		}
	}
	p := make([]byte, 10)
	if n, err := ra.ReadAt(p, int64(len(data)-4)); n != 4 || err == nil {
		t.Fatalf("read past end: %d %v", n, err)
	}

	var walked int
	if err := cs.Walk(ctx, func(content.Info) error { walked++; return nil }); err != nil || walked != 3 {
		t.Fatalf("walk: %d %v", walked, err)
	}
	if _, err := cs.Update(ctx, content.Info{Digest: dgst, Labels: map[string]string{"k": ""}}, "labels.k"); err != nil {
		t.Fatal(err)
	}
	if err := cs.Delete(ctx, dgst); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Info(ctx, dgst); !errdefs.IsNotFound(err) {
		t.Fatalf("info after delete: %v", err)
	}
	if _, err := cs.ReaderAt(ctx, ocispec.Descriptor{Digest: dgst}); !errdefs.IsNotFound(err) {
		t.Fatalf("reader after delete: %v", err)
	}
}
