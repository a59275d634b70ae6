package client

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/images/testimage"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/platforms"
)

func TestConvertOCIMediaType(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{images.MediaTypeDockerSchema2ManifestList, ocispec.MediaTypeImageIndex},
		{images.MediaTypeDockerSchema2Manifest, ocispec.MediaTypeImageManifest},
		{images.MediaTypeDockerSchema2Config, ocispec.MediaTypeImageConfig},
		{images.MediaTypeDockerSchema2Layer, ocispec.MediaTypeImageLayer},
		{images.MediaTypeDockerSchema2LayerGzip, ocispec.MediaTypeImageLayerGzip},
		{images.MediaTypeDockerSchema2LayerZstd, ocispec.MediaTypeImageLayerZstd},
		{images.MediaTypeDockerSchema2LayerForeign, ocispec.MediaTypeImageLayerNonDistributable},         //nolint:staticcheck
		{images.MediaTypeDockerSchema2LayerForeignGzip, ocispec.MediaTypeImageLayerNonDistributableGzip}, //nolint:staticcheck
		// OCI types and others pass unchanged.
		{ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageIndex},
		{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageManifest},
		{ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerGzip},
		{images.MediaTypeDockerSchema1Manifest, images.MediaTypeDockerSchema1Manifest},
		{"application/vnd.in-toto+json", "application/vnd.in-toto+json"},
		{"", ""},
	} {
		if got := OCIMediaType(tc.in); got != tc.want {
			t.Errorf("OCIMediaType(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestConvertUncompressedMediaType(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{images.MediaTypeDockerSchema2LayerGzip, images.MediaTypeDockerSchema2Layer},
		{images.MediaTypeDockerSchema2LayerZstd, images.MediaTypeDockerSchema2Layer},
		{images.MediaTypeDockerSchema2LayerForeignGzip, images.MediaTypeDockerSchema2LayerForeign},
		{ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayer},
		{ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageLayer},
		{ocispec.MediaTypeImageLayerNonDistributableGzip, ocispec.MediaTypeImageLayerNonDistributable}, //nolint:staticcheck
		{ocispec.MediaTypeImageLayerNonDistributableZstd, ocispec.MediaTypeImageLayerNonDistributable}, //nolint:staticcheck
		// Already plain, or not a layer: unchanged.
		{images.MediaTypeDockerSchema2Layer, images.MediaTypeDockerSchema2Layer},
		{ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayer},
		{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageManifest},
		{images.MediaTypeDockerSchema2Config, images.MediaTypeDockerSchema2Config},
	} {
		if got := UncompressedMediaType(tc.in); got != tc.want {
			t.Errorf("UncompressedMediaType(%q) = %q, want %q", tc.in, got, tc.want)
		}
		// Every compressed layer type maps to a layer type we can unpack.
		if images.IsLayerType(tc.in) && !images.IsLayerType(UncompressedMediaType(tc.in)) {
			t.Errorf("UncompressedMediaType(%q) is not a layer type", tc.in)
		}
	}
}

func TestConvertLabelFilters(t *testing.T) {
	src := map[string]string{
		images.LabelGCRefContent + "l.0":      "sha256:a",
		images.LabelGCRefContent + "config":   "sha256:b",
		images.LabelUncompressed:              "sha256:c",
		"containerd.io/distribution.source.x": "docker.io",
	}
	doc := documentLabels(src)
	if len(doc) != 2 || doc[images.LabelUncompressed] == "" || doc["containerd.io/distribution.source.x"] == "" {
		t.Errorf("documentLabels = %v", doc)
	}
	layer := layerLabels(src)
	if len(layer) != 3 || layer[images.LabelUncompressed] != "" {
		t.Errorf("layerLabels = %v", layer)
	}
}

// writeDoc stores v as a blob of media type mt, labelled with GC
// references to children, and returns its descriptor.
func writeDoc(t *testing.T, ctx context.Context, cs content.Store, mt string, v any, children []ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	p, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	desc := writeBlob(t, ctx, cs, mt, p)
	if err := images.SetGCLabels(ctx, cs, desc, children); err != nil {
		t.Fatal(err)
	}
	return desc
}

// readJSON reads desc's blob into v.
func readJSON(t *testing.T, ctx context.Context, cs content.Store, desc ocispec.Descriptor, v any) {
	t.Helper()
	p, err := images.ReadBlob(ctx, cs, desc)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(p, v); err != nil {
		t.Fatal(err)
	}
}

// importImage builds and imports (without unpacking) an image.
func importImage(t *testing.T, ctx context.Context, c *Client, opts testimage.Options) (ImageInfo, testimage.Image) {
	t.Helper()
	data, built := buildArchive(t, opts)
	imgs, err := c.Import(ctx, bytes.NewReader(data), WithoutUnpack(), WithImportAllPlatforms())
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 {
		t.Fatalf("imported %+v", imgs)
	}
	return imgs[0], built
}

// checkManifest checks that the image's manifest has the wanted media
// types, that each layer's blob is there with the descriptor's size and
// digest (for plain layers, the diff ID), and that the manifest's GC
// labels name its config and layers.
func checkManifest(t *testing.T, ctx context.Context, cs content.Store, desc ocispec.Descriptor, manifestMT, configMT, layerMT string, diffIDs []digest.Digest) ocispec.Manifest {
	t.Helper()
	if desc.MediaType != manifestMT {
		t.Errorf("manifest descriptor type %q, want %q", desc.MediaType, manifestMT)
	}
	var m ocispec.Manifest
	readJSON(t, ctx, cs, desc, &m)
	if m.MediaType != manifestMT {
		t.Errorf("manifest document mediaType %q, want %q", m.MediaType, manifestMT)
	}
	if m.Config.MediaType != configMT {
		t.Errorf("config type %q, want %q", m.Config.MediaType, configMT)
	}
	if len(m.Layers) != len(diffIDs) {
		t.Fatalf("%d layers, want %d", len(m.Layers), len(diffIDs))
	}
	for i, l := range m.Layers {
		if l.MediaType != layerMT {
			t.Errorf("layer %d type %q, want %q", i, l.MediaType, layerMT)
		}
		info, err := cs.Info(ctx, l.Digest)
		if err != nil || info.Size != l.Size {
			t.Errorf("layer %d blob: %+v %v", i, info, err)
		}
		if UncompressedMediaType(l.MediaType) == l.MediaType && l.Digest != diffIDs[i] {
			t.Errorf("plain layer %d digest %s, diff ID %s", i, l.Digest, diffIDs[i])
		}
	}
	if _, err := images.ParseManifest(desc, mustRead(t, ctx, cs, desc)); err != nil {
		t.Errorf("converted manifest does not parse: %v", err)
	}
	info, err := cs.Info(ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range images.ChildGCLabels(append([]ocispec.Descriptor{m.Config}, m.Layers...)) {
		if info.Labels[k] != v {
			t.Errorf("manifest label %s = %q, want %q", k, info.Labels[k], v)
		}
	}
	return m
}

// blobsPresent walks the graph under desc and counts its blobs,
// failing the test for any that is missing from the store.
func blobsPresent(t *testing.T, ctx context.Context, cs content.Store, desc ocispec.Descriptor) int {
	t.Helper()
	n := 0
	err := images.Walk(ctx, images.HandlerFunc(func(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		info, err := cs.Info(ctx, d.Digest)
		if err != nil {
			t.Errorf("%s: %v", images.Describe(d), err)
			return nil, images.ErrSkipDesc
		}
		if info.Size != d.Size {
			t.Errorf("%s: stored size %d, descriptor %d", images.Describe(d), info.Size, d.Size)
		}
		n++
		return images.Children(ctx, cs, d)
	}), desc)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustRead(t *testing.T, ctx context.Context, cs content.Store, desc ocispec.Descriptor) []byte {
	t.Helper()
	p, err := images.ReadBlob(ctx, cs, desc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConvertManifest(t *testing.T) {
	c, root := newTestDaemon(t)
	ctx := namespaces.WithNamespace(context.Background(), "test")
	cs := c.ContentStore()
	opts := smallImage("docker.io/library/sample:1", 2)
	opts.Format = testimage.Docker
	src, built := importImage(t, ctx, c, opts)
	if src.Target.MediaType != images.MediaTypeDockerSchema2Manifest {
		t.Fatalf("imported a %s, want a Docker manifest", src.Target.MediaType)
	}
	// Labels of the source travel: the record's, the manifest's, a layer's.
	if _, err := c.ImageService().Update(ctx, ImageInfo{Name: src.Name, Labels: map[string]string{"team": "a"}}, "labels"); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Update(ctx, content.Info{Digest: src.Target.Digest, Labels: map[string]string{"example.com/m": "1"}}, "labels.example.com/m"); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Update(ctx, content.Info{Digest: built.Layers[0].Digest, Labels: map[string]string{"example.com/l": "1", images.LabelUncompressed: built.DiffIDs[0].String()}}, "labels.example.com/l", "labels."+images.LabelUncompressed); err != nil {
		t.Fatal(err)
	}

	dockerGzip, dockerTar := images.MediaTypeDockerSchema2LayerGzip, images.MediaTypeDockerSchema2Layer
	for _, tc := range []struct {
		name                string
		opts                []ConvertOpt
		manifest, cfg, layr string
		same                bool // the source's own manifest
	}{
		{"none", nil, images.MediaTypeDockerSchema2Manifest, images.MediaTypeDockerSchema2Config, dockerGzip, true},
		{"platform", []ConvertOpt{WithConvertPlatform(platforms.OnlyStrict(platforms.MustParse("linux/s390x")))}, images.MediaTypeDockerSchema2Manifest, images.MediaTypeDockerSchema2Config, dockerGzip, true},
		{"oci", []ConvertOpt{WithConvertOCI()}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip, false},
		{"uncompress", []ConvertOpt{WithConvertUncompress()}, images.MediaTypeDockerSchema2Manifest, images.MediaTypeDockerSchema2Config, dockerTar, false},
		{"oci-uncompress", []ConvertOpt{WithConvertOCI(), WithConvertUncompress()}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayer, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := "example.com/conv:" + tc.name
			img, err := c.Convert(ctx, dst, src.Name, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if img.Name != dst || img.Labels["team"] != "a" {
				t.Errorf("record %+v", img)
			}
			if got := img.Target.Digest == src.Target.Digest; got != tc.same {
				t.Errorf("target %s, source %s: same = %v, want %v", img.Target.Digest, src.Target.Digest, got, tc.same)
			}
			m := checkManifest(t, ctx, cs, img.Target, tc.manifest, tc.cfg, tc.layr, built.DiffIDs)
			if m.Config.Digest != built.Config.Digest {
				t.Errorf("config digest changed: %s", m.Config.Digest)
			}
			if !tc.same {
				info, _ := cs.Info(ctx, img.Target.Digest)
				if info.Labels["example.com/m"] != "1" {
					t.Errorf("manifest labels %v: source's label not kept", info.Labels)
				}
			}
			if UncompressedMediaType(tc.layr) == tc.layr {
				info, _ := cs.Info(ctx, m.Layers[0].Digest)
				if info.Labels["example.com/l"] != "1" || info.Labels[images.LabelUncompressed] != "" {
					t.Errorf("uncompressed layer labels %v", info.Labels)
				}
			}
			// Converting again gives the same image.
			again, err := c.Convert(ctx, dst, src.Name, tc.opts...)
			if err != nil || again.Target.Digest != img.Target.Digest {
				t.Errorf("second conversion: %s %v, first %s", again.Target.Digest, err, img.Target.Digest)
			}
		})
	}
	if leases, err := c.Leases().List(ctx); err != nil || len(leases) != 0 {
		t.Errorf("leases left: %v %v", leases, err)
	}

	// The converted images keep their own blobs once the source is gone.
	if err := c.ImageService().Delete(ctx, src.Name, true); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"oci", "uncompress", "oci-uncompress"} {
		img, err := c.ImageService().Get(ctx, "example.com/conv:"+name)
		if err != nil {
			t.Fatal(err)
		}
		if n := blobsPresent(t, ctx, cs, img.Target); n != 4 {
			t.Errorf("%s after the source's removal: %d of its 4 blobs", name, n)
		}
	}
	// Converting the converted image back to where it was is a no-op.
	img, err := c.Convert(ctx, "example.com/conv:back", "example.com/conv:oci-uncompress", WithConvertOCI(), WithConvertUncompress())
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := c.ImageService().Get(ctx, "example.com/conv:oci-uncompress"); img.Target.Digest != want.Target.Digest {
		t.Errorf("reconversion changed the image: %s -> %s", want.Target.Digest, img.Target.Digest)
	}
	// Nothing leaks: with every image gone, so is every blob.
	list, err := c.ImageService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range list {
		if err := c.ImageService().Delete(ctx, i.Name, true); err != nil {
			t.Fatal(err)
		}
	}
	if n := blobsOnDisk(t, root); n != 0 {
		t.Errorf("%d blobs left after every image was removed", n)
	}
}

func TestConvertIndex(t *testing.T) {
	c, _ := newTestDaemon(t)
	ctx := namespaces.WithNamespace(context.Background(), "test")
	cs := c.ContentStore()
	host := platforms.Default()
	other := platforms.MustParse("linux/s390x")
	if platforms.NewMatcher(other).Match(host) {
		other = platforms.MustParse("linux/ppc64le")
	}

	// A Docker manifest list of two Docker images and an entry without
	// a platform.
	var entries []ocispec.Descriptor
	diffIDs := map[string][]digest.Digest{}
	for i, p := range []ocispec.Platform{host, other} {
		opts := smallImage("docker.io/library/part:"+string(rune('a'+i)), 1+i)
		opts.Format = testimage.Docker
		opts.Platform = &p
		img, built := importImage(t, ctx, c, opts)
		desc := img.Target
		desc.Platform = &p
		entries = append(entries, desc)
		diffIDs[platforms.Format(p)] = built.DiffIDs
	}
	noPlatform := entries[0]
	noPlatform.Platform = nil
	entries = append(entries, noPlatform)
	list := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: images.MediaTypeDockerSchema2ManifestList, Manifests: entries}
	root := writeDoc(t, ctx, cs, images.MediaTypeDockerSchema2ManifestList, list, entries)
	if _, err := c.ImageService().Create(ctx, ImageInfo{Name: "docker.io/library/multi:1", Target: root}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		opts      []ConvertOpt
		indexMT   string
		platforms []string // of the entries kept, "" for none
		layerMT   string
		same      bool
	}{
		{"all", nil, images.MediaTypeDockerSchema2ManifestList, []string{platforms.Format(host), platforms.Format(other), ""}, images.MediaTypeDockerSchema2LayerGzip, true},
		{"host", []ConvertOpt{WithConvertPlatform(platforms.OnlyStrict(host))}, images.MediaTypeDockerSchema2ManifestList, []string{platforms.Format(host), ""}, images.MediaTypeDockerSchema2LayerGzip, false},
		{"other-oci", []ConvertOpt{WithConvertPlatform(platforms.OnlyStrict(other)), WithConvertOCI()}, ocispec.MediaTypeImageIndex, []string{platforms.Format(other), ""}, ocispec.MediaTypeImageLayerGzip, false},
		{"all-oci-uncompress", []ConvertOpt{WithConvertOCI(), WithConvertUncompress()}, ocispec.MediaTypeImageIndex, []string{platforms.Format(host), platforms.Format(other), ""}, ocispec.MediaTypeImageLayer, false},
		{"both", []ConvertOpt{WithConvertPlatform(platforms.Ordered(other, host)), WithConvertUncompress()}, images.MediaTypeDockerSchema2ManifestList, []string{platforms.Format(host), platforms.Format(other), ""}, images.MediaTypeDockerSchema2Layer, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := c.Convert(ctx, "docker.io/library/multi:"+tc.name, "docker.io/library/multi:1", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := img.Target.Digest == root.Digest; got != tc.same {
				t.Errorf("same root = %v, want %v", got, tc.same)
			}
			if img.Target.MediaType != tc.indexMT {
				t.Errorf("root type %q, want %q", img.Target.MediaType, tc.indexMT)
			}
			var idx ocispec.Index
			readJSON(t, ctx, cs, img.Target, &idx)
			if idx.MediaType != tc.indexMT {
				t.Errorf("index document mediaType %q, want %q", idx.MediaType, tc.indexMT)
			}
			var got []string
			for _, m := range idx.Manifests {
				p := ""
				if m.Platform != nil {
					p = platforms.Format(*m.Platform)
				}
				got = append(got, p)
				ids := diffIDs[p]
				if p == "" {
					ids = diffIDs[platforms.Format(host)]
				}
				manifestMT, configMT := images.MediaTypeDockerSchema2Manifest, images.MediaTypeDockerSchema2Config
				if tc.indexMT == ocispec.MediaTypeImageIndex {
					manifestMT, configMT = ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig
				}
				checkManifest(t, ctx, cs, m, manifestMT, configMT, tc.layerMT, ids)
			}
			if strings.Join(got, ",") != strings.Join(tc.platforms, ",") {
				t.Errorf("entries for %q, want %q", got, tc.platforms)
			}
			info, err := cs.Info(ctx, img.Target.Digest)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range images.ChildGCLabels(idx.Manifests) {
				if info.Labels[k] != v {
					t.Errorf("index label %s = %q, want %q", k, info.Labels[k], v)
				}
			}
			for k := range info.Labels {
				if strings.HasPrefix(k, images.LabelGCRefContent+"m.") && len(idx.Manifests) <= int(k[len(k)-1]-'0') {
					t.Errorf("index keeps label %s for a dropped entry", k)
				}
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	c, _ := newTestDaemon(t)
	ctx := namespaces.WithNamespace(context.Background(), "test")
	cs := c.ContentStore()
	src, built := importImage(t, ctx, c, smallImage("docker.io/library/sample:1", 1))

	// An index with entries for other platforms only.
	s390x := platforms.MustParse("linux/s390x")
	entry := src.Target
	entry.Platform = &s390x
	idx := writeDoc(t, ctx, cs, ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{entry}}, []ocispec.Descriptor{entry})
	// A manifest whose config's diff ID is not its layer's.
	var cfg ocispec.Image
	readJSON(t, ctx, cs, built.Config, &cfg)
	cfg.RootFS.DiffIDs = []digest.Digest{digest.FromString("not this layer")}
	cfgDesc := writeDoc(t, ctx, cs, ocispec.MediaTypeImageConfig, cfg, nil)
	bad := writeDoc(t, ctx, cs, ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: built.Layers}, append([]ocispec.Descriptor{cfgDesc}, built.Layers...))
	// A manifest whose layer is missing.
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("gone"), Size: 4}
	gone := writeDoc(t, ctx, cs, ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: built.Config, Layers: []ocispec.Descriptor{missing}}, nil)
	schema1 := ocispec.Descriptor{MediaType: images.MediaTypeDockerSchema1Manifest, Digest: digest.FromString("s1"), Size: 2}
	for name, target := range map[string]ocispec.Descriptor{"example.com/idx:1": idx, "example.com/bad:1": bad, "example.com/gone:1": gone, "example.com/s1:1": schema1} {
		if _, err := c.ImageService().Create(ctx, ImageInfo{Name: name, Target: target}); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name, dst, src string
		opts           []ConvertOpt
		is             func(error) bool
		msg            string
	}{
		{"bad target", "Not A Ref", src.Name, nil, errdefs.IsInvalidArgument, "target"},
		{"empty target", "", src.Name, nil, errdefs.IsInvalidArgument, "target"},
		{"empty source", "example.com/x:1", "", nil, errdefs.IsInvalidArgument, "source"},
		{"no source", "example.com/x:1", "docker.io/library/nosuch:1", nil, errdefs.IsNotFound, "nosuch"},
		{"no platform", "example.com/x:1", "example.com/idx:1", []ConvertOpt{WithConvertPlatform(platforms.OnlyStrict(platforms.MustParse("linux/riscv64")))}, errdefs.IsNotFound, "no manifest matches"},
		{"diff id", "example.com/x:1", "example.com/bad:1", []ConvertOpt{WithConvertUncompress()}, errdefs.IsFailedPrecondition, "diff ID"},
		{"missing layer", "example.com/x:1", "example.com/gone:1", []ConvertOpt{WithConvertUncompress()}, errdefs.IsNotFound, missing.Digest.String()},
		{"schema 1", "example.com/x:1", "example.com/s1:1", []ConvertOpt{WithConvertOCI()}, errdefs.IsNotImplemented, "schema 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Convert(ctx, tc.dst, tc.src, tc.opts...)
			if err == nil || !tc.is(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want one of that kind mentioning %q", err, tc.msg)
			}
			if _, err := c.ImageService().Get(ctx, "example.com/x:1"); !errdefs.IsNotFound(err) {
				t.Fatalf("a failed conversion created the target: %v", err)
			}
		})
	}
	// A layer that does not match its diff ID left no ingest behind.
	if st, err := cs.ListStatuses(ctx); err != nil || len(st) != 0 {
		t.Errorf("ingests left: %+v %v", st, err)
	}
	if leases, err := c.Leases().List(ctx); err != nil || len(leases) != 0 {
		t.Errorf("leases left: %v %v", leases, err)
	}
}
