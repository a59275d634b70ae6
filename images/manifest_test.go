package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images/internal/memstore"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestManifestSelection(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	amd := putImage(t, s, "linux/amd64", map[string]string{"amd": "1"})
	arm64 := putImage(t, s, "linux/arm64", map[string]string{"arm64": "1"})
	armv7 := putImage(t, s, "linux/arm", map[string]string{"armv7": "1"})
	i386 := putImage(t, s, "linux/386", map[string]string{"386": "1"})
	noPlat := putImage(t, s, "linux/s390x", map[string]string{"s390x": "1"})
	att := s.Put(ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"`+amd.config.Digest.String()+`","size":`+itoa(amd.config.Size)+`},"layers":[]}`))
	att = withPlatform(att, "unknown/unknown")
	att.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest"}
	sig := s.Put("application/vnd.dev.cosign.simplesigning.v1+json", []byte("{}"))

	idx := putIndex(t, s,
		withPlatform(i386.manifest, "linux/386"),
		att, sig,
		withPlatform(armv7.manifest, "linux/arm/v7"),
		withPlatform(amd.manifest, "linux/amd64"),
		withPlatform(arm64.manifest, "linux/arm64/v8"),
		noPlat.manifest, // judged by its config: linux/s390x
	)
	nested := putIndex(t, s, idx)

	for _, tc := range []struct {
		name     string
		root     ocispec.Descriptor
		platform platforms.MatchComparer
		want     digest.Digest
		notFound bool
	}{
		{"amd64 picks amd64 over 386", idx, platforms.Only(platforms.MustParse("linux/amd64")), amd.manifest.Digest, false},
		{"arm64", idx, platforms.Only(platforms.MustParse("linux/arm64")), arm64.manifest.Digest, false},
		{"arm64 nested", nested, platforms.Only(platforms.MustParse("linux/arm64")), arm64.manifest.Digest, false},
		{"arm/v8 falls back to v7", idx, platforms.Only(platforms.MustParse("linux/arm/v8")), armv7.manifest.Digest, false},
		{"s390x from config", idx, platforms.Only(platforms.MustParse("linux/s390x")), noPlat.manifest.Digest, false},
		{"nil takes first non-attestation", idx, nil, i386.manifest.Digest, false},
		{"no windows", idx, platforms.Only(platforms.MustParse("windows/amd64")), "", true},
		{"no ppc64le", idx, platforms.OnlyStrict(platforms.MustParse("linux/ppc64le")), "", true},
		{"a manifest root ignores platform", amd.manifest, platforms.Only(platforms.MustParse("linux/arm64")), amd.manifest.Digest, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, m, err := ResolveManifest(ctx, s, tc.root, tc.platform)
			if tc.notFound {
				if !errdefs.IsNotFound(err) {
					t.Fatalf("want NotFound, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Digest != tc.want {
				t.Fatalf("got %s want %s", d.Digest, tc.want)
			}
			if len(m.Layers) != 1 {
				t.Fatalf("layers: %v", m.Layers)
			}
		})
	}

	ps, err := Platforms(ctx, s, idx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, platforms.Format(p))
	}
	if want := "linux/386 unknown/unknown linux/arm/v7 linux/amd64 linux/arm64 linux/s390x"; strings.Join(got, " ") != want {
		t.Fatalf("Platforms: got %v want %s", got, want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestManifestRefuses(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	good := putImage(t, s, "linux/amd64", map[string]string{"f": "x"})
	cfg := good.config
	cfgJSON := `{"mediaType":"` + cfg.MediaType + `","digest":"` + cfg.Digest.String() + `","size":` + itoa(cfg.Size) + `}`
	put := func(mt, body string) ocispec.Descriptor { return s.Put(mt, []byte(body)) }
	const m = ocispec.MediaTypeImageManifest

	missing := ocispec.Descriptor{MediaType: m, Digest: digest.FromString("absent"), Size: 10}
	corrupt := put(m, `{"schemaVersion":2,"config":`+cfgJSON+`,"layers":[]}`)
	s.Corrupt(corrupt.Digest, []byte(`{"schemaVersion":2,"config":`+cfgJSON+`,"layers":[]}`+" "))
	resized := put(m, `{"schemaVersion":2,"config":`+cfgJSON+`,"layers":[ ]}`)
	resized.Size--
	deep := good.manifest
	for i := 0; i < maxIndexDepth+1; i++ {
		deep = putIndex(t, s, deep)
	}

	for _, tc := range []struct {
		name string
		desc ocispec.Descriptor
		kind func(error) bool
		msg  string
	}{
		{"bad JSON", put(m, `{"schemaVersion":2,`), errdefs.IsInvalidArgument, "invalid JSON"},
		{"not an object", put(m, `[1,2]`), errdefs.IsInvalidArgument, "invalid JSON"},
		{"schema 1 version", put(m, `{"schemaVersion":1,"config":`+cfgJSON+`}`), errdefs.IsInvalidArgument, "schemaVersion"},
		{"no schemaVersion", put(m, `{"config":`+cfgJSON+`}`), errdefs.IsInvalidArgument, "schemaVersion"},
		{"unknown root type", put("application/x-foo", `{}`), errdefs.IsNotImplemented, `unknown media type "application/x-foo"`},
		{"docker schema 1", put(MediaTypeDockerSchema1Manifest, `{}`), errdefs.IsNotImplemented, "schema 1"},
		{"mediaType mismatch", put(m, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","config":`+cfgJSON+`}`), errdefs.IsInvalidArgument, "does not match"},
		{"manifest with manifests", put(m, `{"schemaVersion":2,"config":`+cfgJSON+`,"manifests":[]}`), errdefs.IsInvalidArgument, "index field"},
		{"index with layers", put(ocispec.MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[],"layers":[]}`), errdefs.IsInvalidArgument, "manifest fields"},
		{"layer bad digest", put(m, `{"schemaVersion":2,"config":`+cfgJSON+`,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:1234","size":1}]}`), errdefs.IsInvalidArgument, "layer 0"},
		{"layer negative size", put(m, `{"schemaVersion":2,"config":`+cfgJSON+`,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"`+cfg.Digest.String()+`","size":-1}]}`), errdefs.IsInvalidArgument, "negative size"},
		{"layer empty media type", put(m, `{"schemaVersion":2,"config":`+cfgJSON+`,"layers":[{"digest":"`+cfg.Digest.String()+`","size":1}]}`), errdefs.IsInvalidArgument, "media type is empty"},
		{"config bad media type", put(m, `{"schemaVersion":2,"config":{"mediaType":"a b","digest":"`+cfg.Digest.String()+`","size":1}}`), errdefs.IsInvalidArgument, "malformed"},
		{"huge config", put(m, `{"schemaVersion":2,"config":{"mediaType":"`+cfg.MediaType+`","digest":"`+cfg.Digest.String()+`","size":99999999999}}`), errdefs.IsInvalidArgument, "exceeds"},
		{"index child huge", putIndex(t, s, ocispec.Descriptor{MediaType: m, Digest: cfg.Digest, Size: 1 << 40}), errdefs.IsInvalidArgument, "exceeds"},
		{"root huge", ocispec.Descriptor{MediaType: m, Digest: cfg.Digest, Size: MaxJSONSize + 1}, errdefs.IsInvalidArgument, "exceeds"},
		{"root bad digest", ocispec.Descriptor{MediaType: m, Digest: "sha256:xyz", Size: 1}, errdefs.IsInvalidArgument, "invalid digest"},
		{"missing", missing, errdefs.IsNotFound, "not found"},
		{"corrupt content", corrupt, errdefs.IsFailedPrecondition, "stored size"},
		{"descriptor size lies", resized, errdefs.IsFailedPrecondition, "stored size"},
		{"too deep", deep, errdefs.IsInvalidArgument, "nested deeper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Manifest(ctx, s, tc.desc, nil)
			if err == nil || !tc.kind(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want kind and %q", err, tc.msg)
			}
		})
	}

	// Same length, different bytes: the digest check catches it.
	swapped := put(m, `{"schemaVersion":2,"config":`+cfgJSON+`,"layers":[]}  `)
	s.Corrupt(swapped.Digest, []byte(`{"schemaVersion":2,"config":`+cfgJSON+`,"layers":[]}{}`))
	if _, err := Manifest(ctx, s, swapped, nil); !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "content has digest") {
		t.Fatalf("swapped content: %v", err)
	}
}

func TestConfigAndRootFS(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	img := putImage(t, s, "linux/amd64", map[string]string{"a": "1"}, map[string]string{"b": "2"})
	cfg, err := Config(ctx, s, img.manifest, nil)
	if err != nil || cfg.Digest != img.config.Digest {
		t.Fatalf("Config: %v %v", cfg, err)
	}
	ids, err := RootFS(ctx, s, cfg)
	if err != nil || len(ids) != 2 || ids[0] != img.diffIDs[0] || ids[1] != img.diffIDs[1] {
		t.Fatalf("RootFS: %v %v", ids, err)
	}
	for _, tc := range []struct{ name, body, msg string }{
		{"bad rootfs type", `{"rootfs":{"type":"nope","diff_ids":[]}}`, "rootfs type"},
		{"bad diff id", `{"rootfs":{"type":"layers","diff_ids":["sha256:12"]}}`, "diff_ids[0]"},
		{"bad JSON", `{"rootfs":`, "invalid JSON"},
	} {
		d := s.Put(ocispec.MediaTypeImageConfig, []byte(tc.body))
		if _, err := RootFS(ctx, s, d); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := RootFS(ctx, s, img.layers[0]); !errdefs.IsNotImplemented(err) {
		t.Errorf("RootFS of a layer: %v", err)
	}
}

func TestChainID(t *testing.T) {
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.FromString("c")
	sum := func(s string) digest.Digest {
		h := sha256.Sum256([]byte(s))
		return digest.Digest("sha256:" + hex.EncodeToString(h[:]))
	}
	ab := sum(a.String() + " " + b.String())
	abc := sum(ab.String() + " " + c.String())
	for _, tc := range []struct {
		in   []digest.Digest
		want digest.Digest
	}{
		{nil, ""},
		{[]digest.Digest{a}, a},
		{[]digest.Digest{a, b}, ab},
		{[]digest.Digest{a, b, c}, abc},
	} {
		if got := ChainID(tc.in); got != tc.want {
			t.Errorf("ChainID(%v) = %s want %s", tc.in, got, tc.want)
		}
	}
	// A value computed by Docker for busybox-like two-layer stacks would
	// need real data; the formula above is the documented one.
	if ids := ChainIDs([]digest.Digest{a, b, c}); len(ids) != 3 || ids[2] != abc {
		t.Errorf("ChainIDs: %v", ids)
	}
}

func TestCheckAndUsage(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	amd := putImage(t, s, "linux/amd64", map[string]string{"a": "1"}, map[string]string{"b": "2"})
	arm := putImage(t, s, "linux/arm64", map[string]string{"a": "1"}, map[string]string{"c": "3"})
	idx := putIndex(t, s, withPlatform(amd.manifest, "linux/amd64"), withPlatform(arm.manifest, "linux/arm64"))

	amdOnly := platforms.Only(platforms.MustParse("linux/amd64"))
	available, required, present, missing, err := Check(ctx, s, idx, amdOnly)
	if err != nil || !available || len(required) != 3 || len(present) != 3 || len(missing) != 0 {
		t.Fatalf("Check: %v %d %d %d %v", available, len(required), len(present), len(missing), err)
	}
	if err := s.Delete(ctx, amd.layers[1].Digest); err != nil {
		t.Fatal(err)
	}
	available, _, present, missing, err = Check(ctx, s, idx, amdOnly)
	if err != nil || !available || len(present) != 2 || len(missing) != 1 || missing[0].Digest != amd.layers[1].Digest {
		t.Fatalf("Check after delete: %v %v %v %v", available, present, missing, err)
	}
	available, _, _, missing, err = Check(ctx, s, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("x"), Size: 3}, amdOnly)
	if err != nil || available || len(missing) != 1 {
		t.Fatalf("Check missing image: %v %v %v", available, missing, err)
	}

	sum := func(ds ...ocispec.Descriptor) (n int64) {
		for _, d := range ds {
			n += d.Size
		}
		return n
	}
	u, err := Usage(ctx, s, idx, amdOnly)
	if want := idx.Size + sum(amd.manifest, amd.config) + sum(amd.layers...); err != nil || u != want {
		t.Fatalf("Usage amd64: %d want %d (%v)", u, want, err)
	}
	u, err = Usage(ctx, s, idx, nil)
	// The shared first layer counts once.
	if want := idx.Size + sum(amd.manifest, amd.config, arm.manifest, arm.config) + sum(amd.layers...) + arm.layers[1].Size; err != nil || u != want {
		t.Fatalf("Usage all: %d want %d (%v)", u, want, err)
	}
}

// lazyProvider opens every blob without looking, as the remote content
// store does when the descriptor has a size; only Info knows.
type lazyProvider struct{ *memstore.Store }

func (p lazyProvider) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	if _, err := p.Info(ctx, desc.Digest); err != nil {
		return missingBlob{desc.Size}, nil // the error comes at the first read
	}
	return p.Store.ReaderAt(ctx, desc)
}

type missingBlob struct{ size int64 }

func (missingBlob) ReadAt([]byte, int64) (int, error) { return 0, errdefs.ErrNotFound }
func (missingBlob) Close() error                      { return nil }
func (b missingBlob) Size() int64                     { return b.size }

func TestCheckLazyProvider(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	img := putImage(t, s, "linux/amd64", map[string]string{"a": "1"}, map[string]string{"b": "2"})
	if err := s.Delete(ctx, img.layers[0].Digest); err != nil {
		t.Fatal(err)
	}
	_, _, present, missing, err := Check(ctx, lazyProvider{s}, img.manifest, platforms.All)
	if err != nil || len(present) != 2 || len(missing) != 1 || missing[0].Digest != img.layers[0].Digest {
		t.Fatalf("Check: present %v missing %v err %v", present, missing, err)
	}
}

func TestWalkAndDispatch(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	amd := putImage(t, s, "linux/amd64", map[string]string{"a": "1"}, map[string]string{"b": "2"})
	arm := putImage(t, s, "linux/arm64", map[string]string{"c": "3"})
	idx := putIndex(t, s, withPlatform(amd.manifest, "linux/amd64"), withPlatform(arm.manifest, "linux/arm64"))

	var seen []digest.Digest
	record := HandlerFunc(func(_ context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		seen = append(seen, d.Digest)
		return nil, nil
	})
	h := Handlers(record, FilterPlatforms(ChildrenHandler(s), platforms.Only(platforms.MustParse("linux/arm64"))))
	if err := Walk(ctx, h, idx); err != nil {
		t.Fatal(err)
	}
	want := []digest.Digest{idx.Digest, arm.manifest.Digest, arm.config.Digest, arm.layers[0].Digest}
	if len(seen) != len(want) {
		t.Fatalf("Walk visited %v want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("Walk visited %v want %v", seen, want)
		}
	}

	// Dispatch: every node once, never more than limit at a time.
	var (
		cur, max, count = make(chan int, 1), 0, 0
	)
	cur <- 0
	counting := HandlerFunc(func(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		n := <-cur + 1
		if n > max {
			max = n
		}
		count++
		cur <- n
		children, err := Children(ctx, s, d)
		cur <- (<-cur - 1)
		return children, err
	})
	if err := Dispatch(ctx, counting, 2, idx); err != nil {
		t.Fatal(err)
	}
	if count != 8 || max > 2 {
		t.Fatalf("Dispatch: %d calls, %d at once", count, max)
	}

	// The first error wins and is returned; ErrSkipDesc prunes.
	boom := errors.New("boom")
	failing := HandlerFunc(func(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if d.Digest == arm.config.Digest {
			return nil, boom
		}
		if d.Digest == amd.manifest.Digest {
			return nil, ErrSkipDesc
		}
		return Children(ctx, s, d)
	})
	if err := Dispatch(ctx, failing, 0, idx); !errors.Is(err, boom) {
		t.Fatalf("Dispatch error: %v", err)
	}
	if err := Walk(ctx, failing, idx); !errors.Is(err, boom) {
		t.Fatalf("Walk error: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Dispatch(cctx, ChildrenHandler(s), 1, idx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dispatch cancelled: %v", err)
	}

	// LimitManifests keeps the best one.
	limited := LimitManifests(ChildrenHandler(s), platforms.Only(platforms.MustParse("linux/arm64")), 1)
	ch, err := limited(ctx, idx)
	if err != nil || len(ch) != 1 || ch[0].Digest != arm.manifest.Digest {
		t.Fatalf("LimitManifests: %v %v", ch, err)
	}
}

func TestSetChildrenLabels(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	img := putImage(t, s, "linux/amd64", map[string]string{"a": "1"}, map[string]string{"b": "2"})
	idx := putIndex(t, s, withPlatform(img.manifest, "linux/amd64"))
	if err := Walk(ctx, SetChildrenLabels(s, ChildrenHandler(s)), idx); err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx, idx.Digest)
	if info.Labels[LabelGCRefContent+"m.0"] != img.manifest.Digest.String() {
		t.Fatalf("index labels: %v", info.Labels)
	}
	info, _ = s.Info(ctx, img.manifest.Digest)
	if info.Labels[LabelGCRefContent+"config"] != img.config.Digest.String() ||
		info.Labels[LabelGCRefContent+"l.0"] != img.layers[0].Digest.String() ||
		info.Labels[LabelGCRefContent+"l.1"] != img.layers[1].Digest.String() {
		t.Fatalf("manifest labels: %v", info.Labels)
	}
}
