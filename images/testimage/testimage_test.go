package testimage_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/images/archive"
	"github.com/berth-containers/berth/images/internal/memstore"
	"github.com/berth-containers/berth/images/testimage"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerEntries reads a stored layer and returns its entries by name, and
// its diff ID computed independently of the builder.
func layerEntries(t *testing.T, s *memstore.Store, desc ocispec.Descriptor) (map[string]*tar.Header, digest.Digest) {
	t.Helper()
	p, ok := s.Bytes(desc.Digest)
	if !ok {
		t.Fatalf("layer %s not stored", desc.Digest)
	}
	var r io.Reader = bytes.NewReader(p)
	if c, _ := images.LayerCompression(desc.MediaType); c == images.Gzip {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	dg := digest.Canonical.Digester()
	tr := tar.NewReader(io.TeeReader(r, dg.Hash()))
	out := map[string]*tar.Header{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = hdr
	}
	io.Copy(io.Discard, r)
	return out, dg.Digest()
}

func importAndCheck(t *testing.T, data []byte, built testimage.Image) (*memstore.Store, ocispec.Manifest, ocispec.Image) {
	t.Helper()
	ctx := context.Background()
	s := memstore.New()
	recs, err := archive.Import(ctx, s, bytes.NewReader(data), archive.WithAllPlatforms())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Name != built.Name {
		t.Fatalf("records %+v, want %s", recs, built.Name)
	}
	m, err := images.Manifest(ctx, s, recs[0].Target, platforms.DefaultMatcher())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := images.ReadConfig(ctx, s, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) || len(m.Layers) != len(built.Layers) {
		t.Fatalf("%d diff IDs, %d layers, built %d", len(cfg.RootFS.DiffIDs), len(m.Layers), len(built.Layers))
	}
	for i, l := range m.Layers {
		_, diffID := layerEntries(t, s, l)
		if diffID != cfg.RootFS.DiffIDs[i] || diffID != built.DiffIDs[i] {
			t.Fatalf("layer %d: content diff ID %s, config %s, built %s", i, diffID, cfg.RootFS.DiffIDs[i], built.DiffIDs[i])
		}
	}
	if images.ChainID(cfg.RootFS.DiffIDs) != built.ChainID {
		t.Fatal("chain ID")
	}
	return s, m, cfg
}

func TestBusybox(t *testing.T) {
	if _, err := os.Stat(testimage.DefaultBusybox); err != nil {
		t.Skipf("no busybox: %v", err)
	}
	for _, format := range []testimage.Format{testimage.OCI, testimage.Docker} {
		opts, err := testimage.Busybox("", 3)
		if err != nil {
			t.Fatal(err)
		}
		opts.Format = format
		var buf bytes.Buffer
		built, err := testimage.Build(context.Background(), &buf, opts)
		if err != nil {
			t.Fatal(err)
		}
		if built.Name != "docker.io/library/busybox:latest" {
			t.Fatalf("name %s", built.Name)
		}
		s, m, cfg := importAndCheck(t, buf.Bytes(), built)
		if strings.Join(cfg.Config.Cmd, " ") != "sh" || cfg.OS != "linux" {
			t.Fatalf("config %+v", cfg)
		}
		base, _ := layerEntries(t, s, m.Layers[0])
		if h := base["bin/busybox"]; h == nil || h.Mode&0o111 == 0 || h.Size < 100000 {
			t.Fatalf("bin/busybox: %+v", h)
		}
		for _, a := range []string{"sh", "ls", "echo", "cat", "true", "false", "sleep", "hostname", "mount", "ps", "id", "env"} {
			if h := base["bin/"+a]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
				t.Fatalf("applet %s: %+v", a, h)
			}
		}
		for _, p := range []string{"etc/passwd", "etc/group", "etc/hostname", "proc/", "sys/", "dev/", "tmp/", "root/"} {
			if base[p] == nil {
				t.Fatalf("%s missing from the base layer", p)
			}
		}
		if base["tmp/"].Mode&0o1000 == 0 {
			t.Fatal("/tmp is not sticky")
		}
		second, _ := layerEntries(t, s, m.Layers[1])
		third, _ := layerEntries(t, s, m.Layers[2])
		if second["usr/share/berth/remove-me.txt"] == nil || third["usr/share/berth/.wh.remove-me.txt"] == nil {
			t.Fatalf("whiteout layers: %v %v", second, third)
		}
	}
}

func TestDeterministic(t *testing.T) {
	opts := testimage.Options{
		Name:   "x/y:z",
		Layers: append([]testimage.Layer{{Files: []testimage.File{testimage.Regular("f", "1", 0o600)}}}, testimage.RandomLayers(1<<20, 2, 7)...),
	}
	var a, b bytes.Buffer
	ia, err := testimage.Build(context.Background(), &a, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testimage.Build(context.Background(), &b, opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two builds differ")
	}
	if ia.Name != "docker.io/x/y:z" || len(ia.Layers) != 3 || ia.Layers[1].Size < 1<<19 {
		t.Fatalf("%+v", ia)
	}
	s, m, _ := importAndCheck(t, a.Bytes(), ia)
	l, _ := layerEntries(t, s, m.Layers[2])
	if h := l["data/random-1.bin"]; h == nil || h.Size != 1<<19 {
		t.Fatalf("random layer: %+v", h)
	}
}

func TestDirLayer(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc/app"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/app/conf"), []byte("k=v\n"), 0o640)
	os.Symlink("app/conf", filepath.Join(dir, "etc/conf"))
	opts := testimage.Options{
		Layers:       []testimage.Layer{{Dir: dir, Files: []testimage.File{testimage.Regular("extra", "x", 0)}}},
		Uncompressed: true,
		Platform:     &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		Config:       ocispec.ImageConfig{Entrypoint: []string{"/bin/app"}, WorkingDir: "/srv", User: "1000:1000", Env: []string{"A=b"}},
	}
	var buf bytes.Buffer
	built, err := testimage.Build(context.Background(), &buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, m, cfg := importAndCheck(t, buf.Bytes(), built)
	if cfg.Architecture != "arm64" || cfg.Config.WorkingDir != "/srv" || cfg.Config.User != "1000:1000" || cfg.Config.Entrypoint[0] != "/bin/app" {
		t.Fatalf("config %+v", cfg)
	}
	l, _ := layerEntries(t, s, m.Layers[0])
	if h := l["etc/app/conf"]; h == nil || h.Size != 4 || h.Mode&0o777 != 0o640 || h.Uid != 0 {
		t.Fatalf("etc/app/conf: %+v", h)
	}
	if h := l["etc/conf"]; h == nil || h.Linkname != "app/conf" {
		t.Fatalf("etc/conf: %+v", h)
	}
	if h := l["extra"]; h == nil || h.Mode&0o777 != 0o644 {
		t.Fatalf("extra: %+v", h)
	}
}

func TestBuildErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := testimage.Build(ctx, io.Discard, testimage.Options{}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("no layers: %v", err)
	}
	one := []testimage.Layer{{Files: []testimage.File{testimage.Regular("a", "", 0)}}}
	if _, err := testimage.Build(ctx, io.Discard, testimage.Options{Name: "Bad", Layers: one}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := testimage.Build(ctx, io.Discard, testimage.Options{Layers: []testimage.Layer{{Files: []testimage.File{{Path: "x", Source: "/nonexistent"}}}}}); err == nil {
		t.Fatal("missing source file accepted")
	}
	if _, err := testimage.Busybox("/nonexistent/busybox", 1); err == nil {
		t.Fatal("missing busybox accepted")
	}
	if _, err := testimage.Busybox("", 0); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("zero layers: %v", err)
	}
	if _, err := testimage.ParseFormat("zip"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("format: %v", err)
	}
}
