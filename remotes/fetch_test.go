package remotes

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/content/local"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// memFetcher serves blobs from memory and records the offsets asked for.
type memFetcher struct {
	mu      sync.Mutex
	blobs   map[digest.Digest][]byte
	offsets []int64
	// breakAt, when > 0, makes the first read stop there with an error.
	breakAt int
	noRange bool
}

func (f *memFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return f.FetchFrom(ctx, desc, 0)
}

func (f *memFetcher) FetchFrom(ctx context.Context, desc ocispec.Descriptor, off int64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offsets = append(f.offsets, off)
	p, ok := f.blobs[desc.Digest]
	if !ok {
		return nil, errdefs.ErrNotFound
	}
	var r io.Reader = bytes.NewReader(p[off:])
	if f.breakAt > 0 {
		r = io.MultiReader(bytes.NewReader(p[off:f.breakAt]), errReader{})
		f.breakAt = 0
	}
	return io.NopCloser(r), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// noRangeFetcher hides FetchFrom.
type noRangeFetcher struct{ f *memFetcher }

func (n noRangeFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return n.f.Fetch(ctx, desc)
}

// newStore is the metadata content store (it keeps labels) over a local one.
func newStore(t *testing.T) content.Store {
	t.Helper()
	backend, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db, err := metadata.NewDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return metadata.NewContentStore(db, backend)
}

func TestFetchBlob(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100000)
	desc := ocispec.Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: digest.FromBytes(data), Size: int64(len(data))}
	for _, tc := range []struct {
		name        string
		partial     []byte // left in the ingest by an earlier, interrupted fetch
		breakAt     int
		noRange     bool
		wantOffsets []int64
		wantErr     string
	}{
		{name: "fresh", wantOffsets: []int64{0}},
		{name: "resume", partial: data[:300000], wantOffsets: []int64{300000}},
		{name: "resume without range support", partial: data[:300000], noRange: true, wantOffsets: []int64{0}},
		{name: "corrupt partial refetched", partial: bytes.Repeat([]byte("x"), 1000), wantOffsets: []int64{1000, 0}},
		{name: "interrupted", breakAt: 5000, wantOffsets: []int64{0}, wantErr: "connection reset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ctx = namespaces.WithNamespace(ctx, "test")
			store := newStore(t)
			ref := RefKey(desc)
			if tc.partial != nil {
				w, err := store.Writer(ctx, content.WithRef(ref), content.WithDescriptor(desc))
				if err != nil {
					t.Fatal(err)
				}
				w.Write(tc.partial)
				w.Close()
			}
			mf := &memFetcher{blobs: map[digest.Digest][]byte{desc.Digest: data}, breakAt: tc.breakAt}
			var f Fetcher = mf
			if tc.noRange {
				f = noRangeFetcher{mf}
			}
			var statuses []Status
			var mu sync.Mutex
			err := FetchBlob(ctx, store, f, desc, WithSource("reg.example.com", "team/app"),
				WithFetchProgress(func(p Progress) {
					mu.Lock()
					if len(statuses) == 0 || statuses[len(statuses)-1] != p.Status {
						statuses = append(statuses, p.Status)
					}
					mu.Unlock()
				}))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), desc.Digest.String()[:20]) {
					t.Fatalf("got %v", err)
				}
				// What arrived is kept for next time.
				st, err := store.Status(ctx, ref)
				if err != nil || st.Offset != int64(tc.breakAt) {
					t.Fatalf("ingest after failure: %+v, %v", st, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(mf.offsets) != len(tc.wantOffsets) {
				t.Fatalf("fetches from %v, want %v", mf.offsets, tc.wantOffsets)
			}
			for i := range mf.offsets {
				if mf.offsets[i] != tc.wantOffsets[i] {
					t.Fatalf("fetches from %v, want %v", mf.offsets, tc.wantOffsets)
				}
			}
			info, err := store.Info(ctx, desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if info.Labels[LabelDistributionSource+"reg.example.com"] != "team/app" {
				t.Errorf("labels %v", info.Labels)
			}
			if statuses[len(statuses)-1] != StatusDone {
				t.Errorf("statuses %v", statuses)
			}

			// Again, from another repository: nothing is fetched, the source is added.
			mf.offsets = nil
			statuses = nil
			if err := FetchBlob(ctx, store, f, desc, WithSource("reg.example.com", "other/app"), WithFetchProgress(func(p Progress) { statuses = append(statuses, p.Status) })); err != nil {
				t.Fatal(err)
			}
			if len(mf.offsets) != 0 {
				t.Error("fetched an existing blob")
			}
			info, _ = store.Info(ctx, desc.Digest)
			if got := info.Labels[LabelDistributionSource+"reg.example.com"]; got != "team/app,other/app" {
				t.Errorf("sources %q", got)
			}
			if len(statuses) != 1 || statuses[0] != StatusExists {
				t.Errorf("statuses %v", statuses)
			}
		})
	}
}

// Two fetches of one blob at once share the ingest: one downloads, the
// other waits and finds it there.
func TestFetchBlobConcurrent(t *testing.T) {
	data := bytes.Repeat([]byte("abc"), 300000)
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
	store := newStore(t)
	mf := &memFetcher{blobs: map[digest.Digest][]byte{desc.Digest: data}}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = FetchBlob(namespaces.WithNamespace(context.Background(), "test"), store, mf, desc)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(mf.offsets) > 2 {
		t.Errorf("downloaded %d times", len(mf.offsets))
	}
}

func TestRefKey(t *testing.T) {
	d := digest.FromString("x")
	for mt, want := range map[string]string{
		"application/vnd.oci.image.index.v1+json":              "index-",
		"application/vnd.docker.distribution.manifest.v2+json": "manifest-",
		"application/vnd.oci.image.config.v1+json":             "config-",
		"application/vnd.oci.image.layer.v1.tar+gzip":          "layer-",
		"application/x-other":                                  "blob-",
	} {
		if got := RefKey(ocispec.Descriptor{MediaType: mt, Digest: d}); got != want+d.String() {
			t.Errorf("%s: %s", mt, got)
		}
	}
	if got := AppendSource("a,b", "b"); got != "a,b" {
		t.Error(got)
	}
	if got := AppendSource("", "b"); got != "b" {
		t.Error(got)
	}
}
