package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/diff"
	"github.com/berth-containers/berth/images/internal/memstore"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tarOf makes an uncompressed layer with one file per name.
func tarOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, p []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(p)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	p, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type testImage struct {
	manifest ocispec.Descriptor
	config   ocispec.Descriptor
	layers   []ocispec.Descriptor
	diffIDs  []digest.Digest
}

// putImage stores a gzip-layered OCI image for platform with one layer per
// entry of layers.
func putImage(t testing.TB, s *memstore.Store, platform string, layers ...map[string]string) testImage {
	t.Helper()
	var img testImage
	for _, files := range layers {
		raw := tarOf(t, files)
		img.diffIDs = append(img.diffIDs, digest.FromBytes(raw))
		img.layers = append(img.layers, s.Put(ocispec.MediaTypeImageLayerGzip, gzipOf(t, raw)))
	}
	os, arch, _ := cutPlatform(platform)
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: os, Architecture: arch},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: img.diffIDs},
	}
	img.config = s.Put(ocispec.MediaTypeImageConfig, mustJSON(t, cfg))
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    img.config,
		Layers:    img.layers,
	}
	img.manifest = s.Put(ocispec.MediaTypeImageManifest, mustJSON(t, m))
	return img
}

func cutPlatform(p string) (string, string, string) {
	var parts [3]string
	n := 0
	for i := 0; i < len(p) && n < 3; i++ {
		if p[i] == '/' {
			n++
			continue
		}
		parts[n] += string(p[i])
	}
	return parts[0], parts[1], parts[2]
}

func putIndex(t testing.TB, s *memstore.Store, manifests ...ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: manifests,
	}
	return s.Put(ocispec.MediaTypeImageIndex, mustJSON(t, idx))
}

func withPlatform(d ocispec.Descriptor, platform string) ocispec.Descriptor {
	os, arch, variant := cutPlatform(platform)
	d.Platform = &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}
	return d
}

// fakeSnapshotter keeps snapshots in memory with the semantics Unpack
// relies on: AlreadyExists for taken keys and names, parents must be
// committed, Remove refuses snapshots with children.
type fakeSnapshotter struct {
	mu    sync.Mutex
	snaps map[string]*snapshots.Info
	// commits counts successful commits per name.
	commits map[string]int
}

func newFakeSnapshotter() *fakeSnapshotter {
	return &fakeSnapshotter{snaps: map[string]*snapshots.Info{}, commits: map[string]int{}}
}

func (f *fakeSnapshotter) Stat(_ context.Context, key string) (snapshots.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i, ok := f.snaps[key]; ok {
		return *i, nil
	}
	return snapshots.Info{}, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
}

func (f *fakeSnapshotter) Update(context.Context, snapshots.Info, ...string) (snapshots.Info, error) {
	return snapshots.Info{}, errdefs.ErrNotImplemented
}

func (f *fakeSnapshotter) Usage(context.Context, string) (snapshots.Usage, error) {
	return snapshots.Usage{}, nil
}

func (f *fakeSnapshotter) Mounts(_ context.Context, key string) ([]mount.Mount, error) {
	return []mount.Mount{{Type: "fake", Source: key}}, nil
}

func (f *fakeSnapshotter) Prepare(_ context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.snaps[key]; ok {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
	}
	if parent != "" {
		p, ok := f.snaps[parent]
		if !ok || p.Kind != snapshots.KindCommitted {
			return nil, fmt.Errorf("parent %q: %w", parent, errdefs.ErrNotFound)
		}
	}
	info := &snapshots.Info{Kind: snapshots.KindActive, Name: key, Parent: parent}
	for _, o := range opts {
		o(info)
	}
	f.snaps[key] = info
	return []mount.Mount{{Type: "fake", Source: key}}, nil
}

func (f *fakeSnapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return f.Prepare(ctx, key, parent, opts...)
}

func (f *fakeSnapshotter) Commit(_ context.Context, name, key string, opts ...snapshots.Opt) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.snaps[key]
	if !ok || a.Kind != snapshots.KindActive {
		return fmt.Errorf("active %q: %w", key, errdefs.ErrNotFound)
	}
	if _, ok := f.snaps[name]; ok {
		return fmt.Errorf("snapshot %q: %w", name, errdefs.ErrAlreadyExists)
	}
	info := &snapshots.Info{Kind: snapshots.KindCommitted, Name: name, Parent: a.Parent}
	for _, o := range opts {
		o(info)
	}
	delete(f.snaps, key)
	f.snaps[name] = info
	f.commits[name]++
	return nil
}

func (f *fakeSnapshotter) Remove(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.snaps[key]; !ok {
		return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	for _, s := range f.snaps {
		if s.Parent == key {
			return fmt.Errorf("snapshot %q has children: %w", key, errdefs.ErrFailedPrecondition)
		}
	}
	delete(f.snaps, key)
	return nil
}

func (f *fakeSnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, _ ...string) error {
	f.mu.Lock()
	infos := make([]snapshots.Info, 0, len(f.snaps))
	for _, s := range f.snaps {
		infos = append(infos, *s)
	}
	f.mu.Unlock()
	for _, i := range infos {
		if err := fn(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSnapshotter) Close() error { return nil }

func (f *fakeSnapshotter) active() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k, s := range f.snaps {
		if s.Kind == snapshots.KindActive {
			out = append(out, k)
		}
	}
	return out
}

// fakeApplier "applies" a layer by computing its diff ID from the store,
// optionally waiting at a gate first so tests can force races.
type fakeApplier struct {
	store content.Provider
	gate  func()
	mu    sync.Mutex
	calls int
}

func (a *fakeApplier) Apply(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount, _ ...diff.ApplyOpt) (ocispec.Descriptor, error) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	if len(mounts) != 1 || mounts[0].Type != "fake" {
		return ocispec.Descriptor{}, fmt.Errorf("unexpected mounts %v", mounts)
	}
	if a.gate != nil {
		a.gate()
	}
	ra, err := a.store.ReaderAt(ctx, desc)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer ra.Close()
	var r io.Reader = io.NewSectionReader(ra, 0, ra.Size())
	if c, _ := LayerCompression(desc.MediaType); c == Gzip {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		r = zr
	}
	dgstr := digest.Canonical.Digester()
	n, err := io.Copy(dgstr.Hash(), r)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: dgstr.Digest(), Size: n}, nil
}

func (a *fakeApplier) Calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}
