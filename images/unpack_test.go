package images

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/berth-containers/berth/images/internal/memstore"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/snapshots"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestUnpack(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	img := putImage(t, s, "linux/amd64", map[string]string{"a": "1"}, map[string]string{"b": "2"}, map[string]string{"c": "3"})
	sn := newFakeSnapshotter()
	ap := &fakeApplier{store: s}

	chain, err := Unpack(ctx, s, img.manifest, sn, ap, platforms.DefaultMatcher(), WithSnapshotterName("overlayfs"))
	if err != nil {
		t.Fatal(err)
	}
	if want := ChainID(img.diffIDs); chain != want {
		t.Fatalf("chain %s want %s", chain, want)
	}
	if ap.Calls() != 3 {
		t.Fatalf("applied %d layers", ap.Calls())
	}
	ids := ChainIDs(img.diffIDs)
	for i, id := range ids {
		info, err := sn.Stat(ctx, id.String())
		if err != nil || info.Kind != snapshots.KindCommitted {
			t.Fatalf("snapshot %d: %+v %v", i, info, err)
		}
		wantParent := ""
		if i > 0 {
			wantParent = ids[i-1].String()
		}
		if info.Parent != wantParent {
			t.Fatalf("snapshot %d parent %q want %q", i, info.Parent, wantParent)
		}
		linfo, _ := s.Info(ctx, img.layers[i].Digest)
		if linfo.Labels[LabelUncompressed] != img.diffIDs[i].String() {
			t.Fatalf("layer %d labels %v", i, linfo.Labels)
		}
	}
	cinfo, _ := s.Info(ctx, img.config.Digest)
	if cinfo.Labels[LabelGCRefSnapshot+"overlayfs"] != chain.String() {
		t.Fatalf("config labels %v", cinfo.Labels)
	}
	if a := sn.active(); len(a) != 0 {
		t.Fatalf("active snapshots left: %v", a)
	}

	// Again: everything is reused.
	again, err := Unpack(ctx, s, img.manifest, sn, ap, nil)
	if err != nil || again != chain || ap.Calls() != 3 {
		t.Fatalf("second unpack: %s %v, %d applies", again, err, ap.Calls())
	}

	// An image sharing the two bottom layers applies only its top one.
	other := putImage(t, s, "linux/amd64", map[string]string{"a": "1"}, map[string]string{"b": "2"}, map[string]string{"d": "4"})
	if _, err := Unpack(ctx, s, other.manifest, sn, ap, nil); err != nil {
		t.Fatal(err)
	}
	if ap.Calls() != 4 {
		t.Fatalf("shared layers re-applied: %d applies", ap.Calls())
	}
}

func TestUnpackConcurrent(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	img := putImage(t, s, "linux/amd64", map[string]string{"a": "1"}, map[string]string{"b": "2"})
	sn := newFakeSnapshotter()

	// Both unpacks must be inside Apply of the first layer before either
	// commits, so both prepare and one commit loses.
	const n = 2
	var arrived sync.WaitGroup
	arrived.Add(n)
	var (
		mu    sync.Mutex
		gated int
	)
	release := make(chan struct{})
	go func() { arrived.Wait(); close(release) }()
	gate := func() {
		mu.Lock()
		first := gated < n
		gated++
		mu.Unlock()
		if first {
			arrived.Done()
			<-release
		}
	}
	ap := &fakeApplier{store: s, gate: gate}

	var wg sync.WaitGroup
	chains := make([]digest.Digest, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			chains[i], errs[i] = Unpack(ctx, s, img.manifest, sn, ap, nil)
		}(i)
	}
	wg.Wait()
	want := ChainID(img.diffIDs)
	for i := range chains {
		if errs[i] != nil || chains[i] != want {
			t.Fatalf("unpack %d: %s %v", i, chains[i], errs[i])
		}
	}
	for _, id := range ChainIDs(img.diffIDs) {
		if sn.commits[id.String()] != 1 {
			t.Fatalf("%s committed %d times", id, sn.commits[id.String()])
		}
	}
	if a := sn.active(); len(a) != 0 {
		t.Fatalf("loser left active snapshots: %v", a)
	}
	if ap.Calls() < n+1 {
		t.Fatalf("race not exercised: %d applies", ap.Calls())
	}
}

func TestUnpackRefuses(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	good := putImage(t, s, "linux/amd64", map[string]string{"a": "1"}, map[string]string{"b": "2"})

	// A config whose second diff ID is wrong.
	wrongIDs := []digest.Digest{good.diffIDs[0], digest.FromString("not the layer")}
	badCfg := s.Put(ocispec.MediaTypeImageConfig, mustJSON(t, ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: wrongIDs}}))
	putManifest := func(cfg ocispec.Descriptor, layers []ocispec.Descriptor) ocispec.Descriptor {
		return s.Put(ocispec.MediaTypeImageManifest, mustJSON(t, ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, Config: cfg, Layers: layers,
		}))
	}
	wrong := putManifest(badCfg, good.layers)

	sn := newFakeSnapshotter()
	ap := &fakeApplier{store: s}
	_, err := Unpack(ctx, s, wrong, sn, ap, nil)
	if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "layer 1") || !strings.Contains(err.Error(), "diff ID") {
		t.Fatalf("wrong diff ID: %v", err)
	}
	if a := sn.active(); len(a) != 0 {
		t.Fatalf("half-made snapshot left: %v", a)
	}
	if _, err := sn.Stat(ctx, ChainID(wrongIDs).String()); !errdefs.IsNotFound(err) {
		t.Fatalf("bad chain committed: %v", err)
	}
	// The good bottom layer was committed and stays usable.
	if _, err := sn.Stat(ctx, good.diffIDs[0].String()); err != nil {
		t.Fatal(err)
	}

	oneID := s.Put(ocispec.MediaTypeImageConfig, mustJSON(t, ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: good.diffIDs[:1]}}))
	notLayer := good.layers[0]
	notLayer.MediaType = "application/x-unknown"
	for _, tc := range []struct {
		name string
		m    ocispec.Descriptor
		kind func(error) bool
		msg  string
	}{
		{"count mismatch", putManifest(oneID, good.layers), errdefs.IsInvalidArgument, "2 layers but config"},
		{"no layers", putManifest(s.Put(ocispec.MediaTypeImageConfig, mustJSON(t, ocispec.Image{RootFS: ocispec.RootFS{Type: "layers"}})), nil), errdefs.IsInvalidArgument, "no layers"},
		{"unknown layer type", putManifest(oneID, []ocispec.Descriptor{notLayer}), errdefs.IsNotImplemented, "not a layer type"},
		{"config not a config", putManifest(good.layers[0], good.layers), errdefs.IsNotImplemented, "not an image config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unpack(ctx, s, tc.m, newFakeSnapshotter(), ap, nil)
			if !tc.kind(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v want %q", err, tc.msg)
			}
		})
	}

	// A missing layer blob fails Apply and leaves nothing behind.
	if err := s.Delete(ctx, good.layers[1].Digest); err != nil {
		t.Fatal(err)
	}
	sn2 := newFakeSnapshotter()
	if _, err := Unpack(ctx, s, good.manifest, sn2, ap, nil); !errdefs.IsNotFound(err) {
		t.Fatalf("missing layer: %v", err)
	}
	if a := sn2.active(); len(a) != 0 {
		t.Fatalf("half-made snapshot left: %v", a)
	}
}
