package metadata

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/content/local"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/leases"
	"github.com/berth-containers/berth/snapshots"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

type gcFixture struct {
	t       *testing.T
	db      *DB
	cs      content.Store
	backend content.Store
	sn      snapshots.Snapshotter
	fake    *fakeSnapshotter
}

func newGCFixture(t *testing.T) *gcFixture {
	db := newTestDB(t)
	backend, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fake := newFakeSnapshotter()
	return &gcFixture{t: t, db: db, cs: NewContentStore(db, backend), backend: backend, sn: NewSnapshotter(db, "fake", fake), fake: fake}
}

func (f *gcFixture) blob(ctx context.Context, data string, labels map[string]string) digest.Digest {
	f.t.Helper()
	d, err := writeBlob(ctx, f.cs, "ref-"+data, data, labels)
	if err != nil {
		f.t.Fatalf("write %q: %v", data, err)
	}
	return d
}

func (f *gcFixture) commit(ctx context.Context, name, parent string, labels map[string]string) {
	f.t.Helper()
	if _, err := f.sn.Prepare(ctx, name+"-active", parent); err != nil {
		f.t.Fatal(err)
	}
	if err := f.sn.Commit(ctx, name, name+"-active", snapshots.WithLabels(labels)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *gcFixture) gc() GCStats {
	f.t.Helper()
	stats, err := f.db.GarbageCollect(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return stats
}

// backendBlobs is every digest the backend holds.
func (f *gcFixture) backendBlobs() map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	f.backend.Walk(context.Background(), func(info content.Info) error {
		out[info.Digest] = true
		return nil
	})
	return out
}

func (f *gcFixture) wantBlobs(want ...digest.Digest) {
	f.t.Helper()
	got := f.backendBlobs()
	if len(got) != len(want) {
		f.t.Errorf("backend has %d blobs, want %d", len(got), len(want))
	}
	for _, d := range want {
		if !got[d] {
			f.t.Errorf("blob %s was collected", d)
		}
	}
}

func (f *gcFixture) wantSnapshots(ctx context.Context, backendCount int, present, absent []string) {
	f.t.Helper()
	if n := len(f.fake.keys()); n != backendCount {
		f.t.Errorf("backend has %d snapshots, want %d: %v", n, backendCount, f.fake.keys())
	}
	for _, k := range present {
		if _, err := f.sn.Stat(ctx, k); err != nil {
			f.t.Errorf("snapshot %q: %v", k, err)
		}
	}
	for _, k := range absent {
		if _, err := f.sn.Stat(ctx, k); !errdefs.IsNotFound(err) {
			f.t.Errorf("snapshot %q survived: %v", k, err)
		}
	}
}

func TestGarbageCollect(t *testing.T) {
	f := newGCFixture(t)
	ctx, other := nsCtx("default"), nsCtx("other")
	bg := context.Background()

	// An unpacked image: manifest -> config, layer; config -> snapshot chain.
	f.commit(ctx, "chain1", "", nil)
	f.commit(ctx, "chain2", "chain1", nil)
	cfg := f.blob(ctx, "config", map[string]string{GCRefSnapshotPrefix + "fake": "chain2"})
	layer := f.blob(ctx, "layer", nil)
	manifest := f.blob(ctx, "manifest", map[string]string{
		GCRefContentPrefix + ".config": cfg.String(),
		GCRefContentPrefix + ".l.0":    layer.String(),
	})
	if _, err := NewImageStore(f.db).Create(ctx, Image{Name: "img", Target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: manifest, Size: 8}}); err != nil {
		t.Fatal(err)
	}
	// A container on top of the chain.
	if _, err := f.sn.Prepare(ctx, "web-rw", "chain2"); err != nil {
		t.Fatal(err)
	}
	c := testContainer("web")
	c.Snapshotter, c.SnapshotKey = "fake", "web-rw"
	if _, err := NewContainerStore(f.db).Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Leases: one live, one expired.
	ls := NewLeaseStore(f.db)
	if _, err := ls.Create(ctx, Lease{ID: "keep", Labels: map[string]string{ExpireLabel: time.Now().Add(time.Hour).Format(time.RFC3339)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Create(ctx, Lease{ID: "old", Labels: map[string]string{ExpireLabel: time.Now().Add(-time.Hour).Format(time.RFC3339)}}); err != nil {
		t.Fatal(err)
	}
	kept := f.blob(ctx, "leased", nil)
	expired := f.blob(ctx, "expired", nil)
	ls.AddResource(ctx, "keep", Resource{ID: kept.String(), Type: "content"})
	ls.AddResource(ctx, "old", Resource{ID: expired.String(), Type: "content"})
	// A gc.root blob, garbage, and garbage snapshots.
	root := f.blob(ctx, "root", map[string]string{GCRootLabel: "x"})
	garbage := f.blob(ctx, "garbage", nil)
	f.commit(ctx, "tmp", "", nil)
	if _, err := f.sn.Prepare(ctx, "tmp-rw", "tmp"); err != nil {
		t.Fatal(err)
	}
	// Namespace other holds the manifest unreferenced: its record goes,
	// the shared backend blob stays for default.
	f.blob(other, "manifest", nil)
	// Backend objects no namespace ever recorded.
	w, _ := f.backend.Writer(bg, content.WithRef("stray"))
	io.WriteString(w, "stray")
	w.Commit(bg, 0, "")
	if _, err := f.fake.Prepare(bg, "stray", ""); err != nil {
		t.Fatal(err)
	}

	stats := f.gc()
	if stats.LeasesExpired != 1 || stats.ContentDeleted != 3 || stats.SnapshotsDeleted != 3 ||
		stats.ContentRecords != 3 || stats.SnapshotRecords != 2 {
		t.Errorf("stats %+v", stats)
	}
	f.wantBlobs(manifest, cfg, layer, kept, root)
	f.wantSnapshots(ctx, 3, []string{"chain1", "chain2", "web-rw"}, []string{"tmp", "tmp-rw"})
	if _, err := f.cs.Info(other, manifest); !errdefs.IsNotFound(err) {
		t.Errorf("other's unreferenced record survived: %v", err)
	}
	if _, err := f.cs.Info(ctx, garbage); !errdefs.IsNotFound(err) {
		t.Errorf("garbage record survived: %v", err)
	}
	if l, _ := ls.List(ctx); len(l) != 1 || l[0].ID != "keep" {
		t.Errorf("leases after gc: %+v", l)
	}

	// Nothing left to collect: a second run removes nothing.
	if stats := f.gc(); stats.ContentDeleted+stats.SnapshotsDeleted+stats.ContentRecords+stats.SnapshotRecords+stats.LeasesExpired != 0 {
		t.Errorf("second gc: %+v", stats)
	}

	// Without the image, its content goes, but the container keeps the chain.
	if err := NewImageStore(f.db).Delete(ctx, "img"); err != nil {
		t.Fatal(err)
	}
	f.gc()
	f.wantBlobs(kept, root)
	f.wantSnapshots(ctx, 3, []string{"chain1", "chain2", "web-rw"}, nil)

	// Without the container, every snapshot goes, children first.
	if err := NewContainerStore(f.db).Delete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if stats := f.gc(); stats.SnapshotsDeleted != 3 {
		t.Errorf("snapshots deleted %d, want 3", stats.SnapshotsDeleted)
	}
	f.wantSnapshots(ctx, 0, nil, []string{"chain1", "chain2", "web-rw"})

	// Deleting the lease frees the last non-root blob.
	if err := ls.Delete(ctx, "keep"); err != nil {
		t.Fatal(err)
	}
	f.gc()
	f.wantBlobs(root)
}

func TestGarbageCollectKeepsLeasedSnapshots(t *testing.T) {
	f := newGCFixture(t)
	ctx := nsCtx("default")
	if _, err := NewLeaseStore(f.db).Create(ctx, Lease{ID: "l"}); err != nil {
		t.Fatal(err)
	}
	f.commit(ctx, "base", "", nil)
	f.commit(ctx, "top", "base", map[string]string{GCRefContentPrefix: f.blob(ctx, "meta", nil).String()})
	NewLeaseStore(f.db).AddResource(ctx, "l", Resource{ID: "top", Type: "snapshots/fake"})
	if stats := f.gc(); stats.SnapshotsDeleted != 0 || stats.ContentDeleted != 0 {
		t.Fatalf("leased chain collected: %+v", stats)
	}
	f.wantSnapshots(ctx, 2, []string{"base", "top"}, nil)
	if len(f.backendBlobs()) != 1 {
		t.Fatalf("blob referenced by a snapshot label collected")
	}
}

// Writers under a lease racing collections never lose what they wrote.
func TestGarbageCollectConcurrentWriters(t *testing.T) {
	f := newGCFixture(t)
	ctx := nsCtx("default")
	ls := NewLeaseStore(f.db)
	done := make(chan struct{})
	gcErr := make(chan error, 1)
	go func() {
		defer close(gcErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := f.db.GarbageCollect(context.Background()); err != nil {
				gcErr <- err
				return
			}
		}
	}()
	var want []digest.Digest
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("l%d", i)
		if _, err := ls.Create(ctx, Lease{ID: id}); err != nil {
			t.Fatal(err)
		}
		lctx := leases.WithLease(ctx, id)
		d, err := writeBlob(lctx, f.cs, id, "data-"+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.sn.Prepare(lctx, id, ""); err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	close(done)
	if err := <-gcErr; err != nil {
		t.Fatal(err)
	}
	f.gc()
	f.wantBlobs(want...)
	if n := len(f.fake.keys()); n != 20 {
		t.Fatalf("%d snapshots survived, want 20", n)
	}
}

// A collection that finds nothing to drop commits nothing (no bbolt
// transaction, so no fdatasync); one that drops a record commits.
func TestGarbageCollectUnchangedCommitsNothing(t *testing.T) {
	f := newGCFixture(t)
	ctx := nsCtx("default")
	txid := func() int {
		var id int
		if err := f.db.bdb.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
			t.Fatal(err)
		}
		return id
	}
	kept := f.blob(ctx, "kept", map[string]string{GCRootLabel: "yes"})
	before := txid()
	if stats := f.gc(); stats.ContentRecords != 0 {
		t.Fatalf("root blob collected: %+v", stats)
	}
	if after := txid(); after != before {
		t.Fatalf("collection with nothing to drop committed: txid %d -> %d", before, after)
	}
	f.blob(ctx, "garbage", nil)
	before = txid()
	if stats := f.gc(); stats.ContentRecords != 1 || stats.ContentDeleted != 1 {
		t.Fatalf("unreferenced blob kept: %+v", stats)
	}
	if after := txid(); after == before {
		t.Fatal("collection that dropped a record did not commit")
	}
	f.wantBlobs(kept)
}
