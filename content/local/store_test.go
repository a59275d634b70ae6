package local

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func newTestStore(t *testing.T) (content.Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := NewStore(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func writeBlob(t *testing.T, s content.Store, ref string, data []byte) digest.Digest {
	t.Helper()
	ctx := context.Background()
	dgst := digest.FromBytes(data)
	w, err := s.Writer(ctx, content.WithRef(ref), content.WithDescriptor(ocispec.Descriptor{Digest: dgst, Size: int64(len(data))}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, int64(len(data)), dgst); err != nil {
		t.Fatal(err)
	}
	return dgst
}

func readAll(t *testing.T, s content.Store, dgst digest.Digest) []byte {
	t.Helper()
	ra, err := s.ReaderAt(context.Background(), ocispec.Descriptor{Digest: dgst})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	b, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteCommitRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"small", []byte("hello berth")},
		{"large", bytes.Repeat([]byte("0123456789abcdef"), 1<<14)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, root := newTestStore(t)
			ctx := context.Background()
			dgst := writeBlob(t, s, "ref-"+tc.name, tc.data)
			if got := readAll(t, s, dgst); !bytes.Equal(got, tc.data) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(tc.data))
			}
			info, err := s.Info(ctx, dgst)
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(len(tc.data)) || info.Digest != dgst || info.CreatedAt.IsZero() {
				t.Fatalf("info = %+v", info)
			}
			fi, err := os.Stat(filepath.Join(root, "blobs", "sha256", dgst.Encoded()))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o444 {
				t.Fatalf("blob mode %v, want 0444", fi.Mode())
			}
			if sts, _ := s.ListStatuses(ctx); len(sts) != 0 {
				t.Fatalf("ingests left after commit: %v", sts)
			}
		})
	}
}

func TestReadRanges(t *testing.T) {
	s, _ := newTestStore(t)
	data := []byte("0123456789")
	dgst := writeBlob(t, s, "ranges", data)
	ra, err := s.ReaderAt(context.Background(), ocispec.Descriptor{Digest: dgst, Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	if ra.Size() != 10 {
		t.Fatalf("size %d", ra.Size())
	}
	for _, tc := range []struct {
		off, n  int64
		want    string
		wantEOF bool
	}{
		{0, 3, "012", false},
		{7, 3, "789", false},
		{8, 4, "89", true},
		{10, 1, "", true},
		{20, 1, "", true},
	} {
		p := make([]byte, tc.n)
		n, err := ra.ReadAt(p, tc.off)
		if string(p[:n]) != tc.want || (err == io.EOF) != tc.wantEOF {
			t.Errorf("ReadAt(%d, %d) = %q, %v", tc.off, tc.n, p[:n], err)
		}
	}
	if _, err := s.ReaderAt(context.Background(), ocispec.Descriptor{Digest: dgst, Size: 11}); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("wrong descriptor size: %v", err)
	}
}

func TestResumeAfterClose(t *testing.T) {
	s, root := newTestStore(t)
	ctx := context.Background()
	data := []byte("first half|second half")
	dgst := digest.FromBytes(data)
	desc := ocispec.Descriptor{Digest: dgst, Size: int64(len(data))}

	w, err := s.Writer(ctx, content.WithRef("resume"), content.WithDescriptor(desc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:11]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx, "resume")
	if err != nil {
		t.Fatal(err)
	}
	if st.Offset != 11 || st.Total != desc.Size || st.Expected != dgst || st.StartedAt.IsZero() {
		t.Fatalf("status = %+v", st)
	}

	// A new store on the same root must resume too (daemon restart).
	s, err = NewStore(root)
	if err != nil {
		t.Fatal(err)
	}
	w, err = s.Writer(ctx, content.WithRef("resume"), content.WithDescriptor(desc))
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := w.Status()
	if ws.Offset != 11 {
		t.Fatalf("resumed at %d, want 11", ws.Offset)
	}
	if _, err := w.Write(data[11:]); err != nil {
		t.Fatal(err)
	}
	if w.Digest() != dgst {
		t.Fatalf("digest after resume %s, want %s", w.Digest(), dgst)
	}
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, dgst); !bytes.Equal(got, data) {
		t.Fatalf("got %q", got)
	}
}

func TestResumeMismatchedTotal(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	w, err := s.Writer(ctx, content.WithRef("r"), content.WithDescriptor(ocispec.Descriptor{Size: 5}))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := s.Writer(ctx, content.WithRef("r"), content.WithDescriptor(ocispec.Descriptor{Size: 6})); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("got %v, want failed precondition", err)
	}
	// The refused writer must not leave the ref locked.
	w, err = s.Writer(ctx, content.WithRef("r"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
}

func TestCommitMismatch(t *testing.T) {
	data := []byte("content")
	for _, tc := range []struct {
		name     string
		size     int64
		expected digest.Digest
	}{
		{"digest", int64(len(data)), digest.FromString("other")},
		{"size", 3, ""},
		{"both", 99, digest.FromString("other")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			ctx := context.Background()
			w, err := s.Writer(ctx, content.WithRef("mismatch"))
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
			err = w.Commit(ctx, tc.size, tc.expected)
			if !errdefs.IsFailedPrecondition(err) {
				t.Fatalf("commit: %v, want failed precondition", err)
			}
			if tc.expected != "" && tc.size == int64(len(data)) && !bytes.Contains([]byte(err.Error()), []byte(tc.expected.String())) {
				t.Fatalf("error %q does not name the expected digest", err)
			}
			if _, err := s.Info(ctx, digest.FromBytes(data)); !errdefs.IsNotFound(err) {
				t.Fatalf("blob committed despite mismatch: %v", err)
			}
			if _, err := s.Status(ctx, "mismatch"); !errdefs.IsNotFound(err) {
				t.Fatalf("ingest left after mismatch: %v", err)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Fatal("write after failed commit succeeded")
			}
		})
	}
}

func TestConcurrentWritersOneRef(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	const n = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		got      []content.Writer
		unavail  int
		otherErr []error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Writer(ctx, content.WithRef("shared"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				got = append(got, w)
			case errdefs.IsUnavailable(err):
				unavail++
			default:
				otherErr = append(otherErr, err)
			}
		}()
	}
	wg.Wait()
	if len(got) != 1 || unavail != n-1 || len(otherErr) != 0 {
		t.Fatalf("writers=%d unavailable=%d errors=%v", len(got), unavail, otherErr)
	}
	if _, err := s.Writer(ctx, content.WithRef("shared")); err == nil || !bytes.Contains([]byte(err.Error()), []byte(`ref "shared" locked`)) {
		t.Fatalf("second writer: %v", err)
	}
	got[0].Close()
	w, err := s.Writer(ctx, content.WithRef("shared"))
	if err != nil {
		t.Fatalf("writer after close: %v", err)
	}
	w.Close()
}

func TestAlreadyExists(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	data := []byte("dup")
	dgst := writeBlob(t, s, "one", data)
	if _, err := s.Writer(ctx, content.WithRef("two"), content.WithDescriptor(ocispec.Descriptor{Digest: dgst})); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("writer for existing digest: %v", err)
	}
	// Without a descriptor the duplicate is found at commit.
	w, err := s.Writer(ctx, content.WithRef("three"))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Commit(ctx, int64(len(data)), dgst); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("commit of existing blob: %v", err)
	}
	if _, err := s.Status(ctx, "three"); !errdefs.IsNotFound(err) {
		t.Fatalf("ingest left: %v", err)
	}
}

func TestAbortAndStatuses(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	for _, ref := range []string{"a", "b/with/slashes", "c"} {
		w, err := s.Writer(ctx, content.WithRef(ref))
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(ref))
		w.Close()
	}
	for _, tc := range []struct {
		filters []string
		want    []string
	}{
		{nil, []string{"a", "b/with/slashes", "c"}},
		{[]string{"ref==a"}, []string{"a"}},
		{[]string{"ref==a", "ref==c"}, []string{"a", "c"}},
		{[]string{`ref~=slash`}, []string{"b/with/slashes"}},
	} {
		sts, err := s.ListStatuses(ctx, tc.filters...)
		if err != nil {
			t.Fatal(err)
		}
		var refs []string
		for _, st := range sts {
			refs = append(refs, st.Ref)
		}
		sort.Strings(refs)
		if len(refs) != len(tc.want) || (len(refs) > 0 && !equal(refs, tc.want)) {
			t.Errorf("ListStatuses(%v) = %v, want %v", tc.filters, refs, tc.want)
		}
	}
	if _, err := s.ListStatuses(ctx, "ref=="); err == nil {
		t.Error("bad filter accepted")
	}
	if err := s.Abort(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Status(ctx, "a"); !errdefs.IsNotFound(err) {
		t.Fatalf("status after abort: %v", err)
	}
	if err := s.Abort(ctx, "a"); !errdefs.IsNotFound(err) {
		t.Fatalf("second abort: %v", err)
	}
	if err := s.Abort(ctx, ""); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("empty ref: %v", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTruncate(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	w, err := s.Writer(ctx, content.WithRef("t"))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("garbage"))
	if err := w.Truncate(0); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("good"))
	if err := w.Commit(ctx, 4, digest.FromString("good")); err != nil {
		t.Fatal(err)
	}
}

func TestWalkDeleteUpdate(t *testing.T) {
	s, root := newTestStore(t)
	ctx := context.Background()
	d1 := writeBlob(t, s, "1", []byte("one"))
	d2 := writeBlob(t, s, "2", []byte("two!"))
	// Stray files must not break a walk.
	os.WriteFile(filepath.Join(root, "blobs", "sha256", "junk"), nil, 0o644)

	for _, tc := range []struct {
		filters []string
		want    []digest.Digest
	}{
		{nil, []digest.Digest{d1, d2}},
		{[]string{"digest==" + d1.String()}, []digest.Digest{d1}},
		{[]string{"size==4"}, []digest.Digest{d2}},
	} {
		var got []digest.Digest
		if err := s.Walk(ctx, func(i content.Info) error { got = append(got, i.Digest); return nil }, tc.filters...); err != nil {
			t.Fatal(err)
		}
		sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
		want := append([]digest.Digest(nil), tc.want...)
		sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
		if len(got) != len(want) || (len(got) == 2 && got[1] != want[1]) || got[0] != want[0] {
			t.Errorf("Walk(%v) = %v, want %v", tc.filters, got, want)
		}
	}

	info, err := s.Update(ctx, content.Info{Digest: d1, Labels: map[string]string{"a": "b"}}, "labels.a")
	if err != nil || info.Size != 3 {
		t.Fatalf("update: %+v %v", info, err)
	}
	if _, err := s.Update(ctx, content.Info{Digest: d1}, "size"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("update size: %v", err)
	}
	if err := s.Delete(ctx, d1); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, d1); !errdefs.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.Info(ctx, d1); !errdefs.IsNotFound(err) {
		t.Fatalf("info after delete: %v", err)
	}
}

func TestInvalidDigests(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	for _, d := range []digest.Digest{"", "sha256:../../etc/passwd", "md5:abcd", "sha256:ABC", "nocolon"} {
		if _, err := s.Info(ctx, d); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Info(%q) = %v", d, err)
		}
		if err := s.Delete(ctx, d); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Delete(%q) = %v", d, err)
		}
		if _, err := s.ReaderAt(ctx, ocispec.Descriptor{Digest: d}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ReaderAt(%q) = %v", d, err)
		}
		if d != "" {
			if _, err := s.Writer(ctx, content.WithRef("x"), content.WithDescriptor(ocispec.Descriptor{Digest: d})); !errdefs.IsInvalidArgument(err) {
				t.Errorf("Writer(%q) = %v", d, err)
			}
		}
	}
}

func TestSHA512(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	data := []byte("sha512 content")
	dgst := digest.SHA512.FromBytes(data)
	w, err := s.Writer(ctx, content.WithRef("512"), content.WithDescriptor(ocispec.Descriptor{Digest: dgst, Size: int64(len(data))}))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, dgst); !bytes.Equal(got, data) {
		t.Fatal("sha512 blob differs")
	}
}
