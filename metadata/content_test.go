package metadata

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/content/local"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/leases"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func newTestContent(t *testing.T) (*DB, content.Store, content.Store) {
	t.Helper()
	db := newTestDB(t)
	backend, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return db, NewContentStore(db, backend), backend
}

// writeBlob writes data under ref and commits it with labels.
func writeBlob(ctx context.Context, cs content.Store, ref, data string, labels map[string]string) (digest.Digest, error) {
	dgst := digest.FromString(data)
	w, err := cs.Writer(ctx, content.WithRef(ref), content.WithDescriptor(ocispec.Descriptor{Digest: dgst, Size: int64(len(data))}))
	if err != nil {
		return dgst, err
	}
	defer w.Close()
	if _, err := io.WriteString(w, data); err != nil {
		return dgst, err
	}
	return dgst, w.Commit(ctx, int64(len(data)), dgst, content.WithLabels(labels))
}

func readBlob0(t *testing.T, ctx context.Context, cs content.Store, dgst digest.Digest) string {
	t.Helper()
	ra, err := cs.ReaderAt(ctx, ocispec.Descriptor{Digest: dgst})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	b := make([]byte, ra.Size())
	if _, err := ra.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return string(b)
}

func TestContentNamespaceIsolation(t *testing.T) {
	_, cs, backend := newTestContent(t)
	a, b := nsCtx("a"), nsCtx("b")
	dgst, err := writeBlob(a, cs, "r1", "hello", map[string]string{"who": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if got := readBlob0(t, a, cs, dgst); got != "hello" {
		t.Fatalf("read %q", got)
	}
	// b has not written it: invisible, though the backend holds it.
	if _, err := cs.Info(b, dgst); !errdefs.IsNotFound(err) {
		t.Fatalf("b sees a's blob: %v", err)
	}
	if _, err := cs.ReaderAt(b, ocispec.Descriptor{Digest: dgst}); !errdefs.IsNotFound(err) {
		t.Fatalf("b reads a's blob: %v", err)
	}
	// a writing again is AlreadyExists before any bytes.
	if _, err := writeBlob(a, cs, "r2", "hello", nil); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("rewrite in a: %v", err)
	}
	// Bytes that do not match the digest do not make it visible in b.
	w, err := cs.Writer(b, content.WithRef("bad"), content.WithDescriptor(ocispec.Descriptor{Digest: dgst, Size: 5}))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "jello")
	if err := w.Commit(b, 5, dgst); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("wrong bytes: %v", err)
	}
	w.Close()
	if _, err := cs.Info(b, dgst); !errdefs.IsNotFound(err) {
		t.Fatalf("b sees blob after bad write: %v", err)
	}
	if _, err := cs.Status(b, "bad"); !errdefs.IsNotFound(err) {
		t.Fatalf("failed ingest still listed: %v", err)
	}
	// b sending the right bytes sees it, with its own labels.
	if _, err := writeBlob(b, cs, "r1", "hello", map[string]string{"who": "b"}); err != nil {
		t.Fatalf("b writes shared blob: %v", err)
	}
	ia, _ := cs.Info(a, dgst)
	ib, err := cs.Info(b, dgst)
	if err != nil || ia.Labels["who"] != "a" || ib.Labels["who"] != "b" || ib.Size != 5 {
		t.Fatalf("labels per namespace: %+v %+v %v", ia, ib, err)
	}
	// Deleting in a leaves b's view and the backend blob alone.
	if err := cs.Delete(a, dgst); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Info(a, dgst); !errdefs.IsNotFound(err) {
		t.Fatalf("after delete: %v", err)
	}
	if readBlob0(t, b, cs, dgst) != "hello" {
		t.Fatal("b lost the blob")
	}
	if _, err := backend.Info(context.Background(), dgst); err != nil {
		t.Fatalf("backend lost the blob: %v", err)
	}
}

func TestContentIngestsPerNamespace(t *testing.T) {
	_, cs, _ := newTestContent(t)
	a, b := nsCtx("a"), nsCtx("b")
	w, err := cs.Writer(a, content.WithRef("same"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "abc")
	st, err := w.Status()
	if err != nil || st.Ref != "same" || st.Offset != 3 {
		t.Fatalf("status %+v %v", st, err)
	}
	w.Close()
	// The same ref in b is a different ingest.
	wb, err := cs.Writer(b, content.WithRef("same"))
	if err != nil {
		t.Fatalf("same ref in b: %v", err)
	}
	wb.Close()
	if st, err := cs.Status(a, "same"); err != nil || st.Offset != 3 || st.Ref != "same" {
		t.Fatalf("Status in a: %+v %v", st, err)
	}
	if st, err := cs.Status(b, "same"); err != nil || st.Offset != 0 {
		t.Fatalf("Status in b: %+v %v", st, err)
	}
	if _, err := cs.Status(nsCtx("c"), "same"); !errdefs.IsNotFound(err) {
		t.Fatalf("Status in c: %v", err)
	}
	sts, err := cs.ListStatuses(a, "ref==same")
	if err != nil || len(sts) != 1 || sts[0].Ref != "same" {
		t.Fatalf("ListStatuses: %+v %v", sts, err)
	}
	// Resume in a continues at the offset.
	w, err = cs.Writer(a, content.WithRef("same"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "def")
	if err := w.Commit(a, 6, digest.FromString("abcdef")); err != nil {
		t.Fatalf("commit resumed: %v", err)
	}
	if sts, _ := cs.ListStatuses(a); len(sts) != 0 {
		t.Fatalf("committed ingest still listed: %+v", sts)
	}
	if err := cs.Abort(b, "same"); err != nil {
		t.Fatal(err)
	}
	if err := cs.Abort(b, "same"); !errdefs.IsNotFound(err) {
		t.Fatalf("second abort: %v", err)
	}
}

func TestContentUpdateWalk(t *testing.T) {
	_, cs, _ := newTestContent(t)
	ctx := nsCtx("default")
	d1, _ := writeBlob(ctx, cs, "1", "one", map[string]string{"k": "v"})
	d2, err := writeBlob(ctx, cs, "2", "two", nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cs.Update(ctx, content.Info{Digest: d2, Labels: map[string]string{"k": "w", "x": "y"}}, "labels.k")
	if err != nil || fmt.Sprint(info.Labels) != "map[k:w]" {
		t.Fatalf("update: %+v %v", info, err)
	}
	if _, err := cs.Update(ctx, content.Info{Digest: d2}, "size"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("update size: %v", err)
	}
	if _, err := cs.Update(ctx, content.Info{Digest: d2, Labels: map[string]string{"": "x"}}, "labels"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad label: %v", err)
	}
	if _, err := cs.Update(nsCtx("other"), content.Info{Digest: d2}); !errdefs.IsNotFound(err) {
		t.Fatalf("update in other namespace: %v", err)
	}
	for _, tc := range []struct {
		filters []string
		want    []digest.Digest
	}{
		{nil, []digest.Digest{d1, d2}},
		{[]string{"labels.k==v"}, []digest.Digest{d1}},
		{[]string{"digest==" + d2.String()}, []digest.Digest{d2}},
		{[]string{"size==3,labels.k"}, []digest.Digest{d1, d2}},
	} {
		var got []string
		err := cs.Walk(ctx, func(info content.Info) error {
			got = append(got, info.Digest.String())
			return nil
		}, tc.filters...)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, d := range tc.want {
			want = append(want, d.String())
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("Walk(%q) = %v, want %v", tc.filters, got, want)
		}
	}
}

func TestContentLease(t *testing.T) {
	db, cs, _ := newTestContent(t)
	ctx := nsCtx("default")
	ls := NewLeaseStore(db)
	if _, err := ls.Create(ctx, Lease{ID: "pull"}); err != nil {
		t.Fatal(err)
	}
	lctx := leases.WithLease(ctx, "pull")
	w, err := cs.Writer(lctx, content.WithRef("pending"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	dgst, err := writeBlob(lctx, cs, "blob", "data", nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ls.ListResources(ctx, "pull")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(rs)
	if want := fmt.Sprint([]Resource{{ID: dgst.String(), Type: "content"}, {ID: "pending", Type: "ingests"}}); got != want {
		t.Fatalf("lease resources %s, want %s", got, want)
	}
	if _, err := cs.Writer(leases.WithLease(ctx, "nope"), content.WithRef("x")); !errdefs.IsNotFound(err) {
		t.Fatalf("missing lease: %v", err)
	}
}

// TestContentExistingBlobJoinsLease: a writer asked for a blob the
// namespace has answers AlreadyExists and, under a lease, adds the blob to
// the lease, so a pull that skips the blob keeps it from the collector
// until its image references it.
func TestContentExistingBlobJoinsLease(t *testing.T) {
	db, cs, _ := newTestContent(t)
	ctx := nsCtx("default")
	dgst, err := writeBlob(ctx, cs, "first", "left by an interrupted pull", nil)
	if err != nil {
		t.Fatal(err)
	}
	ls := NewLeaseStore(db)
	if _, err := ls.Create(ctx, Lease{ID: "second-pull"}); err != nil {
		t.Fatal(err)
	}
	desc := ocispec.Descriptor{Digest: dgst, Size: int64(len("left by an interrupted pull"))}
	// Without a lease: AlreadyExists and nothing else.
	if _, err := cs.Writer(ctx, content.WithRef("again"), content.WithDescriptor(desc)); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("writer of an existing blob: %v, want AlreadyExists", err)
	}
	if _, err := cs.Writer(leases.WithLease(ctx, "second-pull"), content.WithRef("again"), content.WithDescriptor(desc)); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("leased writer of an existing blob: %v, want AlreadyExists", err)
	}
	rs, err := ls.ListResources(ctx, "second-pull")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(rs), fmt.Sprint([]Resource{{ID: dgst.String(), Type: "content"}}); got != want {
		t.Fatalf("lease resources %s, want %s", got, want)
	}
	if _, err := db.GarbageCollect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Info(ctx, dgst); err != nil {
		t.Fatalf("blob held by the lease was collected: %v", err)
	}
}
