package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// treeOf snapshots a tree without inode numbers (which differ between
// copies) and without the root's own entry; hardlinks show as shared link
// counts.
func treeOf(t testing.TB, dir string) map[string]nodeState {
	t.Helper()
	m := snapshotTree(t, dir)
	delete(m, ".")
	for k, v := range m {
		v.ino = 0
		if v.mode.IsDir() {
			v.size = 0 // directory sizes depend on history, not content
		}
		m[k] = v
	}
	return m
}

func diffTrees(t testing.TB, want, got map[string]nodeState) {
	t.Helper()
	var out []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			out = append(out, "missing "+p)
		} else if g != w {
			out = append(out, "differs "+p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			out = append(out, "extra "+p)
		}
	}
	sort.Strings(out)
	if len(out) > 0 {
		t.Fatalf("trees differ:\n%s", strings.Join(out, "\n"))
	}
}

func tarNames(t testing.TB, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		n := hdr.Name
		if hdr.Typeflag == tar.TypeLink {
			n += " -> " + hdr.Linkname
		}
		names = append(names, n)
	}
}

var baseLayer = []entry{
	dirE("etc/", 0o755), fileE("etc/hosts", "127.0.0.1 localhost\n"), fileE("etc/gone", "g"),
	dirE("etc/gonedir/", 0o755), fileE("etc/gonedir/a", "a"),
	dirE("usr/", 0o755), dirE("usr/bin/", 0o755), fileE("usr/bin/sh", "#!"), linkE("usr/bin/bash", "usr/bin/sh"),
	symE("bin", "usr/bin"), fileE("same-second", "12345"),
	dirE("todir/", 0o755), fileE("todir/x", "x"), fileE("tofile", "f"),
	{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: testTime}},
}

// mutate changes a tree the ways a container would.
func mutate(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	j := func(p string) string { return filepath.Join(dir, p) }
	must(os.Remove(j("etc/gone")))
	must(os.RemoveAll(j("etc/gonedir")))
	must(os.WriteFile(j("etc/hosts"), []byte("changed\n"), 0o644))
	must(os.MkdirAll(j("var/lib/app"), 0o750))
	must(os.WriteFile(j("var/lib/app/data"), []byte("data"), 0o600))
	must(os.Link(j("var/lib/app/data"), j("var/lib/app/data2")))
	must(os.Symlink("../lib", j("var/liblink")))
	must(os.Chmod(j("usr/bin/sh"), 0o4755))
	must(os.RemoveAll(j("todir")))
	must(os.WriteFile(j("todir"), []byte("now a file"), 0o644))
	must(os.Remove(j("tofile")))
	must(os.Mkdir(j("tofile"), 0o700))
	must(os.WriteFile(j("tofile/inner"), []byte("i"), 0o644))
	must(unix.Mkfifo(j("fifo"), 0o600))
	must(unix.Setxattr(j("var/lib/app/data"), "user.k", []byte("v"), 0))
	// Same size, same whole-second mtime, different bytes: only a content
	// comparison sees this.
	must(os.WriteFile(j("same-second"), []byte("54321"), 0o644))
	must(os.Chtimes(j("same-second"), testTime, testTime))
}

func TestWriteDiffRoundTrip(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	lower, upper, out := s.sub(t, "lower"), s.sub(t, "upper"), s.sub(t, "out")
	base := mkTar(t, baseLayer...)
	for _, d := range []string{lower, upper, out} {
		if err := apply(t, d, base); err != nil {
			t.Fatal(err)
		}
	}
	mutate(t, upper)

	var diff bytes.Buffer
	if err := WriteDiff(context.Background(), &diff, lower, upper); err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, diff.Bytes())
	want := []string{
		"etc/", "etc/.wh.gone", "etc/.wh.gonedir", "etc/hosts",
		"fifo", "same-second", "todir", "tofile/", "tofile/inner",
		"usr/", "usr/bin/", "usr/bin/bash", "usr/bin/sh -> usr/bin/bash",
		"var/", "var/lib/", "var/lib/app/", "var/lib/app/data", "var/lib/app/data2 -> var/lib/app/data", "var/liblink",
	}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("diff entries:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	if err := apply(t, out, diff.Bytes()); err != nil {
		t.Fatal(err)
	}
	diffTrees(t, treeOf(t, upper), treeOf(t, out))
	buf := make([]byte, 4)
	if n, err := unix.Lgetxattr(filepath.Join(out, "var/lib/app/data"), "user.k", buf); err != nil || string(buf[:n]) != "v" {
		t.Errorf("xattr lost: %q %v", buf[:n], err)
	}

	// Deterministic: the same trees give the same bytes.
	var again bytes.Buffer
	if err := WriteDiff(context.Background(), &again, lower, upper); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(diff.Bytes(), again.Bytes()) {
		t.Error("WriteDiff is not deterministic")
	}
	s.check(t)
}

func TestWriteDiffIdentical(t *testing.T) {
	s := newSandbox(t)
	lower, upper := s.sub(t, "lower"), s.sub(t, "upper")
	base := mkTar(t, dirE("a/", 0o755), fileE("a/b", "b"), symE("c", "a"))
	apply(t, lower, base)
	apply(t, upper, base)
	var diff bytes.Buffer
	if err := WriteDiff(context.Background(), &diff, lower, upper); err != nil {
		t.Fatal(err)
	}
	if names := tarNames(t, diff.Bytes()); len(names) != 0 {
		t.Fatalf("identical trees gave entries %v", names)
	}
}

func TestTarRoundTrip(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	src, dst := s.sub(t, "src"), s.sub(t, "dst")
	if err := apply(t, src, mkTar(t, baseLayer...)); err != nil {
		t.Fatal(err)
	}
	mutate(t, src)
	// A socket has no tar form and is skipped.
	fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(src, "sock")})
	unix.Close(fd)
	os.Chtimes(src+"/etc", time.Unix(1, 5), time.Unix(1, 5))

	var buf bytes.Buffer
	if err := Tar(context.Background(), &buf, src); err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, buf.Bytes())
	if names[0] != "bin" || names[1] != "etc/" {
		t.Errorf("first entries %v, want name order", names[:3])
	}
	if err := apply(t, dst, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	want := treeOf(t, src)
	delete(want, "sock")
	diffTrees(t, want, treeOf(t, dst))
	if a, b := lstat(t, filepath.Join(dst, "usr/bin/sh")), lstat(t, filepath.Join(dst, "usr/bin/bash")); a.Ino != b.Ino {
		t.Error("hardlink not preserved")
	}
	// The tar of a symlink to outside stays a symlink, never its target.
	if err := os.Symlink(s.sentinel, filepath.Join(src, "out")); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := Tar(context.Background(), &buf, src); err != nil {
		t.Fatal(err)
	}
	for _, n := range tarNames(t, buf.Bytes()) {
		if strings.HasPrefix(n, "out/") {
			t.Fatalf("Tar followed a symlink: %s", n)
		}
	}
	s.check(t)
}
