package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/images/internal/memstore"
	"github.com/berth-containers/berth/images/testimage"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestImportFormats(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		format       testimage.Format
		uncompressed bool
		manifestType string
		layerType    string
	}{
		{"oci gzip", testimage.OCI, false, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerGzip},
		{"oci plain", testimage.OCI, true, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer},
		{"docker gzip", testimage.Docker, false, images.MediaTypeDockerSchema2Manifest, images.MediaTypeDockerSchema2LayerGzip},
		{"docker plain", testimage.Docker, true, images.MediaTypeDockerSchema2Manifest, images.MediaTypeDockerSchema2Layer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := smallImage("example.com/test/app:v1", nil)
			opts.Format, opts.Uncompressed = tc.format, tc.uncompressed
			data, built := build(t, opts)
			s := newStore()
			recs, err := Import(ctx, s, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Name != "example.com/test/app:v1" {
				t.Fatalf("records %+v", recs)
			}
			target := recs[0].Target
			if target.MediaType != tc.manifestType {
				t.Fatalf("target type %s", target.MediaType)
			}
			m, err := images.Manifest(ctx, s, target, platforms.DefaultMatcher())
			if err != nil {
				t.Fatal(err)
			}
			if m.Config.Digest != built.Config.Digest {
				t.Fatalf("config %s want %s", m.Config.Digest, built.Config.Digest)
			}
			for i, l := range m.Layers {
				if l.MediaType != tc.layerType || l.Digest != built.Layers[i].Digest || l.Size != built.Layers[i].Size {
					t.Fatalf("layer %d: %+v want %+v type %s", i, l, built.Layers[i], tc.layerType)
				}
			}
			ids, err := images.RootFS(ctx, s, m.Config)
			if err != nil {
				t.Fatal(err)
			}
			for i := range ids {
				if ids[i] != built.DiffIDs[i] {
					t.Fatalf("diff ID %d: %s want %s", i, ids[i], built.DiffIDs[i])
				}
			}
			info, _ := s.Info(ctx, target.Digest)
			if info.Labels[images.LabelGCRefContent+"config"] != m.Config.Digest.String() || info.Labels[images.LabelGCRefContent+"l.2"] != m.Layers[2].Digest.String() {
				t.Fatalf("manifest GC labels %v", info.Labels)
			}
			if s.OpenIngests() != 0 {
				t.Fatalf("%d ingests left open", s.OpenIngests())
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	data, built := build(t, smallImage("docker.io/library/app:1", nil))
	s := newStore()
	recs, err := Import(ctx, s, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	exp := []ExportImage{{Name: recs[0].Name, Target: recs[0].Target}, {Name: "docker.io/library/app:latest", Target: recs[0].Target}}
	var out1, out2 bytes.Buffer
	if err := Export(ctx, s, &out1, exp); err != nil {
		t.Fatal(err)
	}
	if err := Export(ctx, s, &out2, exp); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out1.Bytes(), out2.Bytes()) {
		t.Fatal("export is not deterministic")
	}

	// The layout is what containerd writes: oci-layout, index.json with
	// both name annotations, a docker manifest.json, then blobs.
	es := entries(t, out1.Bytes())
	if es[0].name != "oci-layout" || es[1].name != "index.json" || es[2].name != "manifest.json" {
		t.Fatalf("entry order: %s %s %s", es[0].name, es[1].name, es[2].name)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(es[1].body, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[0].Annotations[images.AnnotationImageName] != "docker.io/library/app:1" || idx.Manifests[0].Annotations[ocispec.AnnotationRefName] != "1" {
		t.Fatalf("index.json %s", es[1].body)
	}
	var dm []dockerManifestEntry
	if err := json.Unmarshal(es[2].body, &dm); err != nil {
		t.Fatal(err)
	}
	if len(dm) != 1 || strings.Join(dm[0].RepoTags, ",") != "app:1,app:latest" || len(dm[0].Layers) != 3 || dm[0].Config != "blobs/sha256/"+built.Config.Digest.Encoded() {
		t.Fatalf("manifest.json %s", es[2].body)
	}
	blobs := 0
	for _, e := range es {
		if strings.HasPrefix(e.name, "blobs/sha256/") && len(e.name) > len("blobs/sha256/") {
			blobs++
			if digest.FromBytes(e.body).Encoded() != strings.TrimPrefix(e.name, "blobs/sha256/") {
				t.Fatalf("blob %s has other content", e.name)
			}
		}
	}
	if blobs != 5 {
		t.Fatalf("%d blobs, want manifest+config+3 layers", blobs)
	}

	s2 := newStore()
	recs2, err := Import(ctx, s2, bytes.NewReader(out1.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs2) != 2 || recs2[0].Name != "docker.io/library/app:1" || recs2[1].Name != "docker.io/library/app:latest" || recs2[0].Target.Digest != built.Manifest.Digest {
		t.Fatalf("re-import: %+v", recs2)
	}
	if s2.Len() != s.Len() {
		t.Fatalf("re-import stored %d blobs, first import %d", s2.Len(), s.Len())
	}

	// Importing the same archive again is a no-op that still succeeds.
	if _, err := Import(ctx, s2, bytes.NewReader(out1.Bytes())); err != nil {
		t.Fatal(err)
	}
}

// multiPlatform stores two single-platform images and an index over them,
// returning the index and the two images.
func multiPlatform(t *testing.T) (*testStore, ocispec.Descriptor, testimage.Image, testimage.Image) {
	ctx := context.Background()
	s := newStore()
	amd := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	var built [2]testimage.Image
	var descs []ocispec.Descriptor
	for i, p := range []*ocispec.Platform{&amd, &arm} {
		data, img := build(t, smallImage("example.com/multi:"+p.Architecture, p))
		recs, err := Import(ctx, s, bytes.NewReader(data), WithAllPlatforms())
		if err != nil {
			t.Fatal(err)
		}
		d := recs[0].Target
		d.Annotations = nil
		descs = append(descs, d)
		built[i] = img
	}
	p, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: descs})
	idx := s.Put(ocispec.MediaTypeImageIndex, p)
	return s, idx, built[0], built[1]
}

type testStore = memstore.Store

func TestPlatformSelection(t *testing.T) {
	ctx := context.Background()
	s, idx, amd, arm := multiPlatform(t)
	var all bytes.Buffer
	if err := Export(ctx, s, &all, []ExportImage{{Name: "example.com/multi:1", Target: idx}}, WithAllPlatforms()); err != nil {
		t.Fatal(err)
	}
	if es := entries(t, all.Bytes()); es[2].name == "manifest.json" {
		t.Fatal("all-platform export of an index wrote a docker manifest.json")
	}

	// Importing for arm64 never stores amd64's own layers.
	s2 := newStore()
	recs, err := Import(ctx, s2, bytes.NewReader(all.Bytes()), WithPlatform(platforms.Only(platforms.MustParse("linux/arm64"))))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Target.Digest != idx.Digest {
		t.Fatalf("records %+v", recs)
	}
	if _, err := s2.Info(ctx, amd.Layers[2].Digest); !errdefs.IsNotFound(err) {
		t.Fatalf("amd64 layer imported for arm64: %v", err)
	}
	if _, err := s2.Info(ctx, amd.Config.Digest); !errdefs.IsNotFound(err) {
		t.Fatalf("amd64 config imported for arm64: %v", err)
	}
	m, err := images.Manifest(ctx, s2, idx, platforms.Only(platforms.MustParse("linux/arm64")))
	if err != nil || m.Config.Digest != arm.Config.Digest {
		t.Fatalf("arm64 manifest: %v", err)
	}
	info, _ := s2.Info(ctx, idx.Digest)
	if info.Labels[images.LabelGCRefContent+"m.0"] != arm.Manifest.Digest.String() || len(info.Labels) != 1 {
		t.Fatalf("index labels only the imported platform: %v", info.Labels)
	}

	// All platforms: everything.
	s3 := newStore()
	if _, err := Import(ctx, s3, bytes.NewReader(all.Bytes()), WithAllPlatforms()); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(amd.Layers, arm.Layers...) {
		if _, err := s3.Info(ctx, d.Digest); err != nil {
			t.Fatalf("layer %s missing: %v", d.Digest, err)
		}
	}

	// An amd64-only export holds the whole index but only amd64's blobs,
	// and a docker manifest.json for amd64.
	var one bytes.Buffer
	if err := Export(ctx, s, &one, []ExportImage{{Name: "example.com/multi:1", Target: idx}}, WithPlatform(platforms.OnlyStrict(platforms.MustParse("linux/amd64")))); err != nil {
		t.Fatal(err)
	}
	es := entries(t, one.Bytes())
	if es[2].name != "manifest.json" || !strings.Contains(string(es[2].body), amd.Config.Digest.Encoded()) {
		t.Fatalf("manifest.json: %s", es[2].body)
	}
	if bytes.Contains(one.Bytes(), []byte(arm.Config.Digest.Encoded()+"\x00")) {
		t.Fatal("arm64 config exported")
	}
	// Importing it for all platforms finds arm64's manifest missing.
	if _, err := Import(ctx, newStore(), bytes.NewReader(one.Bytes()), WithAllPlatforms()); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), arm.Manifest.Digest.String()) {
		t.Fatalf("import incomplete archive: %v", err)
	}
	if _, err := Import(ctx, newStore(), bytes.NewReader(one.Bytes()), WithPlatform(platforms.Only(platforms.MustParse("linux/amd64")))); err != nil {
		t.Fatal(err)
	}
}

func TestImportNaming(t *testing.T) {
	ctx := context.Background()
	data, built := build(t, smallImage("docker.io/library/app:1", nil))
	mdigest := built.Manifest.Digest.String()

	// Rewrite index.json's annotations.
	withAnnotations := func(a map[string]string) []byte {
		es := entries(t, data)
		for i, e := range es {
			if e.name == "index.json" {
				var idx ocispec.Index
				json.Unmarshal(e.body, &idx)
				idx.Manifests[0].Annotations = a
				es[i].body, _ = json.Marshal(idx)
			}
		}
		return makeTar(t, es...)
	}
	for _, tc := range []struct {
		name string
		data []byte
		opts []Opt
		want []string
	}{
		{"containerd name", data, nil, []string{"docker.io/library/app:1"}},
		{"ref.name tag under base", withAnnotations(map[string]string{ocispec.AnnotationRefName: "2.0"}), []Opt{WithBaseName("example.com/base")}, []string{"example.com/base:2.0"}},
		{"ref.name full reference", withAnnotations(map[string]string{ocispec.AnnotationRefName: "busybox:3"}), nil, []string{"docker.io/library/busybox:3"}},
		{"ref.name bare tag, no base", withAnnotations(map[string]string{ocispec.AnnotationRefName: "latest"}), nil, nil},
		{"unnamed with digests", withAnnotations(nil), []Opt{WithDigests(), WithBaseName("example.com/x")}, []string{"example.com/x@" + mdigest}},
		{"digests too", data, []Opt{WithDigests(), WithBaseName("b")}, []string{"docker.io/library/app:1", "b@" + mdigest}},
		{"digests skipped for named", data, []Opt{WithDigests(), WithSkipDigestForNamed(), WithBaseName("b")}, []string{"docker.io/library/app:1"}},
		{"digests kept for unnamed", withAnnotations(nil), []Opt{WithDigests(), WithSkipDigestForNamed(), WithBaseName("b")}, []string{"b@" + mdigest}},
		{"skip without digests", data, []Opt{WithSkipDigestForNamed()}, []string{"docker.io/library/app:1"}},
		{"index name", data, []Opt{WithIndexName("whole")}, []string{"docker.io/library/app:1", "whole"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			recs, err := Import(ctx, s, bytes.NewReader(tc.data), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Name)
				if _, err := s.Info(ctx, r.Target.Digest); err != nil {
					t.Fatalf("target of %s not stored: %v", r.Name, err)
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("names %q want %q", got, tc.want)
			}
		})
	}
	if _, err := Import(ctx, newStore(), bytes.NewReader(data), WithBaseName("Bad Name")); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad base name: %v", err)
	}
	if _, err := Import(ctx, newStore(), bytes.NewReader(data), WithBaseName("x:tag")); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("base name with tag: %v", err)
	}

	// Docker: RepoTags normalised, index name over all manifests.
	opts := smallImage("app:7", nil)
	opts.Format = testimage.Docker
	ddata, _ := build(t, opts)
	s := newStore()
	recs, err := Import(ctx, s, bytes.NewReader(ddata), WithIndexName("all"))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Name != "docker.io/library/app:7" || recs[1].Name != "all" || recs[1].Target.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("docker records %+v", recs)
	}
	if _, err := images.Manifest(ctx, s, recs[1].Target, platforms.DefaultMatcher()); err != nil {
		t.Fatalf("docker index: %v", err)
	}
	// Docker: a digest name for a tagged image only without
	// WithSkipDigestForNamed.
	for _, tc := range []struct {
		opts []Opt
		want int
	}{{[]Opt{WithDigests()}, 2}, {[]Opt{WithDigests(), WithSkipDigestForNamed()}, 1}} {
		recs, err := Import(ctx, newStore(), bytes.NewReader(ddata), tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != tc.want || recs[0].Name != "docker.io/library/app:7" {
			t.Fatalf("docker records with %d opts %+v, want %d", len(tc.opts), recs, tc.want)
		}
	}
}

// Non-distributable layers are exported when the store has them, unless
// WithSkipNonDistributable; the manifest names them either way.
func TestExportNonDistributable(t *testing.T) {
	ctx := context.Background()
	s := newStore()
	data, _ := build(t, smallImage("example.com/foreign:1", nil))
	recs, err := Import(ctx, s, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	m, err := images.Manifest(ctx, s, recs[0].Target, platforms.DefaultMatcher())
	if err != nil {
		t.Fatal(err)
	}
	foreign := s.Put(ocispec.MediaTypeImageLayerNonDistributableGzip, []byte("a layer that may not be redistributed"))
	m.Layers = append(m.Layers, foreign)
	p, _ := json.Marshal(m)
	target := s.Put(ocispec.MediaTypeImageManifest, p)
	blob := "blobs/sha256/" + foreign.Digest.Encoded()
	for _, tc := range []struct {
		opts []Opt
		want bool
	}{{nil, true}, {[]Opt{WithSkipNonDistributable()}, false}} {
		var out bytes.Buffer
		if err := Export(ctx, s, &out, []ExportImage{{Name: "example.com/foreign:1", Target: target}}, tc.opts...); err != nil {
			t.Fatal(err)
		}
		found, manifest := false, false
		for _, e := range entries(t, out.Bytes()) {
			found = found || e.name == blob
			manifest = manifest || e.name == "blobs/sha256/"+target.Digest.Encoded()
		}
		if found != tc.want || !manifest {
			t.Errorf("%d opts: foreign layer exported %v (want %v), manifest %v", len(tc.opts), found, tc.want, manifest)
		}
	}
}

// WithCompressBlobs gzips a docker archive's uncompressed layers the way
// the compressed archive of the same image was built (gzip, default
// level): the manifest is the one that archive gives. Compressed layers
// and OCI archives are left alone.
func TestImportCompressBlobs(t *testing.T) {
	ctx := context.Background()
	opts := smallImage("app:gz", nil)
	opts.Format = testimage.Docker
	compressed, built := build(t, opts)
	opts.Uncompressed = true
	plain, _ := build(t, opts)
	for _, tc := range []struct {
		name string
		data []byte
		opts []Opt
		want digest.Digest // "" : the uncompressed import's own
	}{
		{"uncompressed docker, compressed", plain, []Opt{WithCompressBlobs()}, built.Manifest.Digest},
		{"compressed docker", compressed, []Opt{WithCompressBlobs()}, built.Manifest.Digest},
		{"uncompressed docker, as is", plain, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			recs, err := Import(ctx, s, bytes.NewReader(tc.data), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			got := recs[0].Target.Digest
			m, err := images.Manifest(ctx, s, recs[0].Target, platforms.DefaultMatcher())
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if got == built.Manifest.Digest || m.Layers[0].MediaType != images.MediaTypeDockerSchema2Layer {
					t.Fatalf("uncompressed import compressed: %s %s", got, m.Layers[0].MediaType)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("manifest %s, want %s", got, tc.want)
			}
			for i, l := range m.Layers {
				info, err := s.Info(ctx, l.Digest)
				if err != nil || l.MediaType != images.MediaTypeDockerSchema2LayerGzip {
					t.Fatalf("layer %d %s %s: %v", i, l.Digest, l.MediaType, err)
				}
				if len(tc.opts) > 0 && bytes.Equal(tc.data, plain) && info.Labels[images.LabelUncompressed] != built.DiffIDs[i].String() {
					t.Errorf("layer %d labels %v, want diff ID %s", i, info.Labels, built.DiffIDs[i])
				}
			}
		})
	}
}
