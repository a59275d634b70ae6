package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (devices, ownership, trusted xattrs)")
	}
}

func apply(t testing.TB, root string, layer []byte, opts ...ApplyOpt) error {
	t.Helper()
	n, err := Apply(context.Background(), root, bytes.NewReader(layer), opts...)
	if err == nil && n != int64(len(layer)) {
		t.Fatalf("Apply read %d bytes of a %d byte layer", n, len(layer))
	}
	return err
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestApplyEntryTypes(t *testing.T) {
	requireRoot(t)
	mtime := time.Date(2021, 5, 6, 7, 8, 9, 123456789, time.UTC)
	atime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		entries []entry
		check   func(t *testing.T, root string)
	}{{
		name: "regular file with owner, setuid mode and times",
		entries: []entry{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "bin/su", Mode: 0o4755, Uid: 1000, Gid: 42,
			Size: 5, ModTime: mtime, AccessTime: atime, Format: tar.FormatPAX}, data: "hello"}},
		check: func(t *testing.T, root string) {
			p := filepath.Join(root, "bin/su")
			st := lstat(t, p) // before reading, which moves atime
			if got := readFile(t, p); got != "hello" {
				t.Errorf("content %q", got)
			}
			if st.Mode != unix.S_IFREG|0o4755 || st.Uid != 1000 || st.Gid != 42 {
				t.Errorf("mode %o owner %d:%d", st.Mode, st.Uid, st.Gid)
			}
			if st.Mtim.Nano() != mtime.UnixNano() || st.Atim.Nano() != atime.UnixNano() {
				t.Errorf("times %v %v", time.Unix(0, st.Mtim.Nano()), time.Unix(0, st.Atim.Nano()))
			}
			// The implicit parent is a plain 0755 directory.
			if st := lstat(t, filepath.Join(root, "bin")); st.Mode != unix.S_IFDIR|0o755 {
				t.Errorf("implicit parent mode %o", st.Mode)
			}
		},
	}, {
		name: "setgid and sticky directory with times set after its children",
		entries: []entry{
			{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o3777, Uid: 5, Gid: 6, ModTime: mtime}},
			fileE("tmp/a", "a"),
			dirE("tmp/sub/", 0o700),
			fileE("tmp/sub/b", "b"),
		},
		check: func(t *testing.T, root string) {
			st := lstat(t, filepath.Join(root, "tmp"))
			if st.Mode != unix.S_IFDIR|0o3777 || st.Uid != 5 || st.Gid != 6 {
				t.Errorf("mode %o owner %d:%d", st.Mode, st.Uid, st.Gid)
			}
			if st.Mtim.Nano() != mtime.UnixNano() {
				t.Errorf("dir mtime %v, want %v", time.Unix(0, st.Mtim.Nano()), mtime)
			}
			if st := lstat(t, filepath.Join(root, "tmp/sub")); st.Mtim.Nano() != testTime.UnixNano() || st.Mode != unix.S_IFDIR|0o700 {
				t.Errorf("sub mode %o mtime %v", st.Mode, time.Unix(0, st.Mtim.Nano()))
			}
		},
	}, {
		name:    "symlink keeps its target verbatim and its own owner and times",
		entries: []entry{{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "lib", Linkname: "/usr/lib", Uid: 7, Gid: 8, ModTime: mtime}}},
		check: func(t *testing.T, root string) {
			p := filepath.Join(root, "lib")
			if got, _ := os.Readlink(p); got != "/usr/lib" {
				t.Errorf("target %q", got)
			}
			st := lstat(t, p)
			if st.Uid != 7 || st.Gid != 8 || st.Mtim.Nano() != mtime.UnixNano() {
				t.Errorf("owner %d:%d mtime %v", st.Uid, st.Gid, time.Unix(0, st.Mtim.Nano()))
			}
		},
	}, {
		name:    "hardlink shares the inode",
		entries: []entry{fileE("a", "data"), linkE("b", "a"), linkE("c", "/a")},
		check: func(t *testing.T, root string) {
			a, b, c := lstat(t, filepath.Join(root, "a")), lstat(t, filepath.Join(root, "b")), lstat(t, filepath.Join(root, "c"))
			if a.Ino != b.Ino || a.Ino != c.Ino || a.Nlink != 3 {
				t.Errorf("inodes %d %d %d nlink %d", a.Ino, b.Ino, c.Ino, a.Nlink)
			}
		},
	}, {
		name:    "hardlink to a symlink links the symlink itself",
		entries: []entry{symE("s", "/etc/passwd"), linkE("h", "s")},
		check: func(t *testing.T, root string) {
			st := lstat(t, filepath.Join(root, "h"))
			if st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Ino != lstat(t, filepath.Join(root, "s")).Ino {
				t.Errorf("h is mode %o", st.Mode)
			}
		},
	}, {
		name: "devices and fifo",
		entries: []entry{
			{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mtime}},
			{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop9", Mode: 0o660, Gid: 6, Devmajor: 7, Devminor: 9, ModTime: mtime}},
			{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o620, ModTime: mtime}},
		},
		check: func(t *testing.T, root string) {
			if st := lstat(t, filepath.Join(root, "dev/null")); st.Mode != unix.S_IFCHR|0o666 || st.Rdev != unix.Mkdev(1, 3) {
				t.Errorf("null mode %o rdev %x", st.Mode, st.Rdev)
			}
			if st := lstat(t, filepath.Join(root, "dev/loop9")); st.Mode != unix.S_IFBLK|0o660 || st.Rdev != unix.Mkdev(7, 9) || st.Gid != 6 {
				t.Errorf("loop mode %o rdev %x gid %d", st.Mode, st.Rdev, st.Gid)
			}
			if st := lstat(t, filepath.Join(root, "run/fifo")); st.Mode != unix.S_IFIFO|0o620 || st.Mtim.Nano() != mtime.UnixNano() {
				t.Errorf("fifo mode %o", st.Mode)
			}
		},
	}, {
		name: "xattrs from PAX records; overlay ones dropped",
		entries: []entry{
			{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "f", Mode: 0o755, ModTime: mtime, PAXRecords: map[string]string{
				"SCHILY.xattr.user.color":             "blue",
				"SCHILY.xattr.trusted.thing":          "t",
				"SCHILY.xattr.trusted.overlay.opaque": "y",
				"SCHILY.xattr.security.capability":    "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
			}}},
			{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755, ModTime: mtime, PAXRecords: map[string]string{
				"SCHILY.xattr.user.dir": "yes",
			}}},
		},
		check: func(t *testing.T, root string) {
			p := filepath.Join(root, "f")
			for name, want := range map[string]string{"user.color": "blue", "trusted.thing": "t"} {
				buf := make([]byte, 64)
				n, err := unix.Lgetxattr(p, name, buf)
				if err != nil || string(buf[:n]) != want {
					t.Errorf("xattr %s = %q, %v", name, buf[:n], err)
				}
			}
			if _, err := unix.Lgetxattr(p, "trusted.overlay.opaque", nil); !errors.Is(err, unix.ENODATA) {
				t.Errorf("trusted.overlay.opaque was applied: %v", err)
			}
			if _, err := unix.Lgetxattr(p, "security.capability", nil); err != nil {
				t.Errorf("security.capability: %v", err)
			}
			buf := make([]byte, 8)
			if n, err := unix.Lgetxattr(filepath.Join(root, "d"), "user.dir", buf); err != nil || string(buf[:n]) != "yes" {
				t.Errorf("dir xattr %q %v", buf[:n], err)
			}
		},
	}, {
		name:    "entries naming the root are skipped",
		entries: []entry{dirE("./", 0o700), dirE("/", 0o700), fileE("./a", "a")},
		check: func(t *testing.T, root string) {
			if st := lstat(t, root); st.Mode&0o777 != 0o755 {
				t.Errorf("root mode changed to %o", st.Mode)
			}
			if readFile(t, filepath.Join(root, "a")) != "a" {
				t.Error("a missing")
			}
		},
	}, {
		name:    "a later entry replaces an earlier one of another type",
		entries: []entry{dirE("x/", 0o755), fileE("x/inner", "i"), fileE("x", "now a file"), symE("y", "x"), fileE("y", "file y"), fileE("z", "z"), dirE("z/", 0o711)},
		check: func(t *testing.T, root string) {
			if readFile(t, filepath.Join(root, "x")) != "now a file" || readFile(t, filepath.Join(root, "y")) != "file y" {
				t.Error("replacement content wrong")
			}
			if st := lstat(t, filepath.Join(root, "z")); st.Mode != unix.S_IFDIR|0o711 {
				t.Errorf("z mode %o", st.Mode)
			}
		},
	}, {
		name:    "symlinks inside the layer are followed within the root",
		entries: []entry{dirE("usr/lib/", 0o755), symE("lib", "usr/lib"), symE("abs", "/usr"), fileE("lib/a", "a"), fileE("abs/lib/b", "b")},
		check: func(t *testing.T, root string) {
			if readFile(t, filepath.Join(root, "usr/lib/a")) != "a" || readFile(t, filepath.Join(root, "usr/lib/b")) != "b" {
				t.Error("writes through in-root symlinks went astray")
			}
		},
	}, {
		name:    "dangling symlink parent creates its target inside the root",
		entries: []entry{symE("d", "/nowhere/deep"), fileE("d/f", "f")},
		check: func(t *testing.T, root string) {
			if readFile(t, filepath.Join(root, "nowhere/deep/f")) != "f" {
				t.Error("file not under the symlink's in-root target")
			}
		},
	}, {
		name:    "long but valid names",
		entries: []entry{fileE(strings.Repeat("d/", 100)+strings.Repeat("n", 255), "deep"), fileE(strings.Repeat(strings.Repeat("x", 99)+"/", 39)+"f", "long")},
		check: func(t *testing.T, root string) {
			if readFile(t, filepath.Join(root, strings.Repeat("d/", 100)+strings.Repeat("n", 255))) != "deep" {
				t.Error("deep file")
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			if err := apply(t, s.root, mkTar(t, tc.entries...)); err != nil {
				t.Fatal(err)
			}
			tc.check(t, s.root)
			s.check(t)
		})
	}
}

func TestApplyWhiteoutsRemoveMode(t *testing.T) {
	s := newSandbox(t)
	lower := mkTar(t,
		dirE("etc/", 0o755), fileE("etc/keep", "k"), fileE("etc/gone", "g"),
		dirE("etc/sub/", 0o755), fileE("etc/sub/x", "x"),
		dirE("opq/", 0o755), fileE("opq/old", "o"), dirE("opq/olddir/", 0o755), fileE("opq/olddir/f", "f"),
		dirE("opq/kept/", 0o755), fileE("opq/kept/lower", "l"),
		dirE("late/", 0o755), fileE("late/old", "o"),
	)
	if err := apply(t, s.root, lower); err != nil {
		t.Fatal(err)
	}
	upper := mkTar(t,
		whE("etc/.wh.gone"), whE("etc/.wh.sub"), whE("etc/.wh.missing"), whE("nodir/.wh.x"),
		whE("opq/.wh..wh..opq"), fileE("opq/new", "n"),
		// The marker may come after entries of the same layer: they stay,
		// but what a restated directory held from lower layers goes.
		fileE("late/new", "n"), dirE("opq/kept/", 0o755), fileE("opq/kept/upper", "u"), whE("late/.wh..wh..opq"),
		whE("opq/.wh..wh.plnk"), // AUFS bookkeeping, ignored
	)
	if err := apply(t, s.root, upper); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"etc/keep": true, "etc/gone": false, "etc/sub": false, "nodir": false,
		"opq/new": true, "opq/old": false, "opq/olddir": false,
		"opq/kept/upper": true, "opq/kept/lower": false, // restated after the marker: a new directory
		"late/new": true, "late/old": false, "opq/.wh..wh.plnk": false,
	} {
		if got := exists(filepath.Join(s.root, p)); got != want {
			t.Errorf("%s exists=%v, want %v", p, got, want)
		}
	}
	s.check(t)
}

func TestApplyOpaqueKeepsOnlyThisLayer(t *testing.T) {
	s := newSandbox(t)
	if err := apply(t, s.root, mkTar(t, dirE("d/", 0o755), dirE("d/a/", 0o755), fileE("d/a/lower", "l"), fileE("d/b", "b"))); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, s.root, mkTar(t, dirE("d/a/", 0o755), fileE("d/a/upper", "u"), whE("d/.wh..wh..opq"))); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"d/a/upper": true, "d/a/lower": false, "d/b": false} {
		if got := exists(filepath.Join(s.root, p)); got != want {
			t.Errorf("%s exists=%v, want %v", p, got, want)
		}
	}
}

func TestApplyOverlayWhiteouts(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	layer := mkTar(t, dirE("etc/", 0o755), whE("etc/.wh.gone"), dirE("opq/", 0o755), whE("opq/.wh..wh..opq"), fileE("opq/new", "n"), whE("deep/dir/.wh.x"))
	if err := apply(t, s.root, layer, WithOverlayWhiteouts()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/gone", "deep/dir/x"} {
		st := lstat(t, filepath.Join(s.root, p))
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: mode %o rdev %d owner %d:%d, want a 0/0 char device", p, st.Mode, st.Rdev, st.Uid, st.Gid)
		}
	}
	buf := make([]byte, 4)
	if n, err := unix.Lgetxattr(filepath.Join(s.root, "opq"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr %q %v", buf[:n], err)
	}
	if exists(filepath.Join(s.root, "etc/.wh.gone")) {
		t.Error("whiteout entry written literally")
	}
	s.check(t)
}

// TestApplyOverlayWhiteoutsMount checks the overlay-mode output is what the
// kernel reads as whiteouts: apply into an upper dir, mount, look.
func TestApplyOverlayWhiteoutsMount(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "l"), filepath.Join(base, "u"), filepath.Join(base, "w"), filepath.Join(base, "m")
	for _, d := range []string{lower, upper, work, merged} {
		os.Mkdir(d, 0o755)
	}
	if err := apply(t, lower, mkTar(t, fileE("gone", "g"), fileE("keep", "k"), dirE("opq/", 0o755), fileE("opq/old", "o"))); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, upper, mkTar(t, whE(".wh.gone"), dirE("opq/", 0o755), whE("opq/.wh..wh..opq"), fileE("opq/new", "n")), WithOverlayWhiteouts()); err != nil {
		t.Fatal(err)
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("overlay mount: %v", err)
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)
	for p, want := range map[string]bool{"gone": false, "keep": true, "opq/old": false, "opq/new": true} {
		if got := exists(filepath.Join(merged, p)); got != want {
			t.Errorf("merged %s exists=%v, want %v", p, got, want)
		}
	}
	// Remove mode through the mounted overlay: the kernel makes whiteouts.
	if err := apply(t, merged, mkTar(t, whE(".wh.keep"), whE("opq/.wh..wh..opq"), fileE("opq/newer", "n"))); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"keep": false, "opq/new": false, "opq/newer": true} {
		if got := exists(filepath.Join(merged, p)); got != want {
			t.Errorf("after plain apply, merged %s exists=%v, want %v", p, got, want)
		}
	}
}

func TestApplyMaxSize(t *testing.T) {
	s := newSandbox(t)
	layer := mkTar(t, fileE("a", strings.Repeat("a", 4096)), fileE("b", strings.Repeat("b", 8192)))
	_, err := Apply(context.Background(), s.root, bytes.NewReader(layer), WithMaxSize(6000))
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), `entry "b"`) {
		t.Fatalf("err = %v, want invalid argument naming b", err)
	}
	if exists(filepath.Join(s.root, "b")) {
		t.Error("entry over the limit was written")
	}
	// Exactly at the limit is fine.
	if _, err := Apply(context.Background(), s.sub(t, "exact"), bytes.NewReader(layer), WithMaxSize(int64(len(layer)))); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	// Trailing bytes past the limit fail too.
	long := append(append([]byte{}, layer...), make([]byte, 10240)...)
	if _, err := Apply(context.Background(), s.sub(t, "long"), bytes.NewReader(long), WithMaxSize(int64(len(layer)))); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("trailer over the limit: %v", err)
	}
}

func TestApplyReadsWholeStream(t *testing.T) {
	layer := mkTar(t, fileE("a", "a"))
	layer = append(layer, make([]byte, 10240-len(layer)%10240)...) // record padding
	n, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(layer))
	if err != nil || n != int64(len(layer)) {
		t.Fatalf("n=%d err=%v, want %d", n, err, len(layer))
	}
}

func TestApplyErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		want    string
	}{
		{"parent is a file", []entry{fileE("f", "f"), fileE("f/x", "x")}, `entry "f/x": open parent directory`},
		{"symlink loop", []entry{symE("a", "b"), symE("b", "a"), fileE("a/x", "x")}, "too many symlinks"},
		{"hardlink to missing", []entry{linkE("h", "nothere")}, `entry "h": hardlink to "nothere"`},
		{"hardlink to a directory", []entry{dirE("d/", 0o755), linkE("h", "d")}, `entry "h": hardlink`},
		{"unsupported type", []entry{{hdr: tar.Header{Typeflag: 'Z', Name: "z", ModTime: testTime}}}, "unsupported entry type"},
		{"whiteout of dotdot", []entry{whE("a/.wh..")}, "whiteout names"},
		{"component too long", []entry{fileE(strings.Repeat("n", 256), "x")}, "file name too long"},
		{"name too long", []entry{fileE(strings.Repeat("d/", 2100)+"f", "x")}, "longer than 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			err := apply(t, s.root, mkTar(t, tc.entries...))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "apply layer: ") {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			s.check(t)
		})
	}
}

func TestApplyTruncated(t *testing.T) {
	layer := mkTar(t, fileE("a", strings.Repeat("x", 5000)))
	_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(layer[:2000]))
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v", err)
	}
}

func TestApplyCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(mkTar(t, fileE("a", "a"))))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestApplyContiguousFileIsRegular(t *testing.T) {
	s := newSandbox(t)
	e := fileE("c", "contiguous")
	e.hdr.Typeflag = tar.TypeCont
	if err := apply(t, s.root, mkTar(t, e)); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(s.root, "c")) != "contiguous" {
		t.Fatal("content")
	}
}
