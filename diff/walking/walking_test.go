package walking

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-containers/berth/archive"
	"github.com/berth-containers/berth/archive/compression"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/content/local"
	"github.com/berth-containers/berth/diff"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for bind mounts")
	}
}

type file struct{ name, data string }

func layerTar(t *testing.T, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data))}
		if f.name[len(f.name)-1] == '/' {
			hdr = &tar.Header{Typeflag: tar.TypeDir, Name: f.name, Mode: 0o755}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f.data)
	}
	tw.Close()
	return buf.Bytes()
}

func compress(t *testing.T, b []byte, c compression.Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := compression.CompressStream(&buf, c)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func newStore(t *testing.T) content.Store {
	t.Helper()
	cs, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func put(t *testing.T, cs content.Store, mediaType string, blob []byte) ocispec.Descriptor {
	t.Helper()
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	w, err := cs.Writer(context.Background(), content.WithRef("test-"+desc.Digest.Encoded()), content.WithDescriptor(desc))
	if errdefs.IsAlreadyExists(err) {
		return desc
	}
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(blob); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(context.Background(), desc.Size, desc.Digest); err != nil {
		t.Fatal(err)
	}
	return desc
}

func bind(dir string) []mount.Mount {
	return []mount.Mount{{Type: "bind", Source: dir, Options: []string{"rbind", "rw"}}}
}

func TestApplyMediaTypes(t *testing.T) {
	requireRoot(t)
	cs := newStore(t)
	a := NewApplier(cs)
	layer := layerTar(t, file{"etc/", ""}, file{"etc/hostname", "berth\n"})
	for _, tc := range []struct {
		mediaType string
		comp      compression.Compression
	}{
		{ocispec.MediaTypeImageLayer, compression.Uncompressed},
		{ocispec.MediaTypeImageLayerGzip, compression.Gzip},
		{ocispec.MediaTypeImageLayerZstd, compression.Zstd},
		{"application/vnd.docker.image.rootfs.diff.tar.gzip", compression.Gzip},
		{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", compression.Gzip},
		{ocispec.MediaTypeImageLayerNonDistributableZstd, compression.Zstd}, //nolint:staticcheck
		// The media type's suffix is not trusted: the bytes decide.
		{ocispec.MediaTypeImageLayerGzip, compression.Zstd},
	} {
		t.Run(tc.mediaType+"/"+tc.comp.String(), func(t *testing.T) {
			desc := put(t, cs, tc.mediaType, compress(t, layer, tc.comp))
			target := t.TempDir()
			got, err := a.Apply(context.Background(), desc, bind(target))
			if err != nil {
				t.Fatal(err)
			}
			want := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}
			if got.MediaType != want.MediaType || got.Digest != want.Digest || got.Size != want.Size {
				t.Fatalf("descriptor %+v, want %+v", got, want)
			}
			if b, err := os.ReadFile(filepath.Join(target, "etc/hostname")); err != nil || string(b) != "berth\n" {
				t.Fatalf("hostname %q %v", b, err)
			}
		})
	}
}

func TestApplyUnknownMediaType(t *testing.T) {
	cs := newStore(t)
	desc := put(t, cs, "application/vnd.example.layer", []byte("x"))
	_, err := NewApplier(cs).Apply(context.Background(), desc, nil)
	if !errdefs.IsNotImplemented(err) || !bytes.Contains([]byte(err.Error()), []byte(`"application/vnd.example.layer"`)) {
		t.Fatalf("err = %v", err)
	}
}

// lyingProvider serves the bytes of one blob under any digest, as a broken
// or hostile store would.
type lyingProvider struct{ blob []byte }

type bytesReaderAt struct{ *bytes.Reader }

func (bytesReaderAt) Close() error { return nil }

func (p lyingProvider) ReaderAt(context.Context, ocispec.Descriptor) (content.ReaderAt, error) {
	return bytesReaderAt{bytes.NewReader(p.blob)}, nil
}

func TestApplyRefusesDigestMismatch(t *testing.T) {
	requireRoot(t)
	blob := compress(t, layerTar(t, file{"a", "a"}), compression.Gzip)
	other := digest.FromString("something else")
	a := NewApplier(lyingProvider{blob})
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: other, Size: int64(len(blob))}
	_, err := a.Apply(context.Background(), desc, bind(t.TempDir()))
	if !errdefs.IsFailedPrecondition(err) || !bytes.Contains([]byte(err.Error()), []byte(other.String())) {
		t.Fatalf("err = %v, want a mismatch naming %s", err, other)
	}
	desc.Digest, desc.Size = digest.FromBytes(blob), 3
	if _, err := a.Apply(context.Background(), desc, bind(t.TempDir())); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("size mismatch: err = %v", err)
	}
}

func TestApplyMaxLayerSize(t *testing.T) {
	requireRoot(t)
	cs := newStore(t)
	desc := put(t, cs, ocispec.MediaTypeImageLayerGzip, compress(t, layerTar(t, file{"big", string(make([]byte, 1<<20))}), compression.Gzip))
	_, err := NewApplier(cs, WithMaxLayerSize(64<<10)).Apply(context.Background(), desc, bind(t.TempDir()))
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestApplyHostileLayerThroughMount(t *testing.T) {
	requireRoot(t)
	cs := newStore(t)
	base := t.TempDir()
	target, outside := filepath.Join(base, "target"), filepath.Join(base, "outside")
	os.Mkdir(target, 0o755)
	os.Mkdir(outside, 0o755)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "out", Linkname: outside})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "out/evil", Size: 1, Mode: 0o644})
	tw.Write([]byte("x"))
	tw.Close()
	desc := put(t, cs, ocispec.MediaTypeImageLayer, buf.Bytes())
	if _, err := NewApplier(cs).Apply(context.Background(), desc, bind(target)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "evil")); err == nil {
		t.Fatal("layer wrote outside the mount")
	}
}

func TestCompareRoundTrip(t *testing.T) {
	requireRoot(t)
	cs := newStore(t)
	d := New(cs)
	ctx := context.Background()
	lower, upper, check := t.TempDir(), t.TempDir(), t.TempDir()
	base := layerTar(t, file{"etc/", ""}, file{"etc/a", "a"}, file{"etc/b", "b"})
	for _, dir := range []string{lower, upper, check} {
		if _, err := archive.Apply(ctx, dir, bytes.NewReader(base)); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(upper, "etc/a"))
	os.WriteFile(filepath.Join(upper, "etc/c"), []byte("c"), 0o600)

	for _, mt := range []string{"", ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerZstd, "application/vnd.docker.image.rootfs.diff.tar.gzip"} {
		t.Run("mediatype="+mt, func(t *testing.T) {
			var opts []diff.Opt
			if mt != "" {
				opts = append(opts, func(c *diff.Config) error { c.MediaType = mt; return nil })
			}
			desc, err := d.Compare(ctx, bind(lower), bind(upper), opts...)
			if err != nil {
				t.Fatal(err)
			}
			wantMT := mt
			if wantMT == "" {
				wantMT = ocispec.MediaTypeImageLayerGzip
			}
			if desc.MediaType != wantMT {
				t.Fatalf("media type %q", desc.MediaType)
			}
			info, err := cs.Info(ctx, desc.Digest)
			if err != nil || info.Size != desc.Size {
				t.Fatalf("blob %v %v", info, err)
			}
			dst := t.TempDir()
			if _, err := archive.Apply(ctx, dst, bytes.NewReader(base)); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Apply(ctx, desc, bind(dst)); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dst, "etc/a")); err == nil {
				t.Error("deleted file came back")
			}
			if b, _ := os.ReadFile(filepath.Join(dst, "etc/c")); string(b) != "c" {
				t.Errorf("etc/c = %q", b)
			}
		})
	}
	// Comparing again yields the same blob (already in the store).
	d1, err := d.Compare(ctx, bind(lower), bind(upper))
	if err != nil {
		t.Fatal(err)
	}
	d2, err := d.Compare(ctx, bind(lower), bind(upper))
	if err != nil || d1.Digest != d2.Digest {
		t.Fatalf("second compare %v %v", d2, err)
	}
	// An empty lower is an empty tree: the layer holds everything.
	all, err := d.Compare(ctx, nil, bind(check), func(c *diff.Config) error { c.MediaType = ocispec.MediaTypeImageLayer; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if all.Digest != digest.FromBytes(tarOf(t, check)) {
		t.Error("compare against nothing differs from Tar of the tree")
	}
}

func tarOf(t *testing.T, dir string) []byte {
	var buf bytes.Buffer
	if err := archive.Tar(context.Background(), &buf, dir); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCompareUnknownMediaType(t *testing.T) {
	_, err := NewComparer(newStore(t)).Compare(context.Background(), nil, nil, func(c *diff.Config) error { c.MediaType = "text/plain"; return nil })
	if !errdefs.IsNotImplemented(err) {
		t.Fatalf("err = %v", err)
	}
}

// TestApplyThroughOverlay is the overlay snapshotter's case: the layer is
// applied through an overlay mount with plain whiteouts, and the kernel
// records the deletions in the upper directory as overlay whiteouts.
func TestApplyThroughOverlay(t *testing.T) {
	requireRoot(t)
	cs := newStore(t)
	ctx := context.Background()
	base := t.TempDir()
	lower, upper, work := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{lower, upper, work} {
		os.Mkdir(d, 0o755)
	}
	if _, err := archive.Apply(ctx, lower, bytes.NewReader(layerTar(t, file{"gone", "g"}, file{"d/", ""}, file{"d/old", "o"}))); err != nil {
		t.Fatal(err)
	}
	layer := layerTar(t, file{".wh.gone", ""}, file{"d/", ""}, file{"d/.wh..wh..opq", ""}, file{"d/new", "n"})
	desc := put(t, cs, ocispec.MediaTypeImageLayer, layer)
	mounts := []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}}
	if _, err := NewApplier(cs).Apply(ctx, desc, mounts); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"gone", "d/old"} {
		fi, err := os.Lstat(filepath.Join(upper, p))
		if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("upper %s: %v %v, want an overlay whiteout", p, fi, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(upper, "d/new")); string(b) != "n" {
		t.Errorf("upper d/new = %q", b)
	}
}
