package native

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCopyTreePreserves(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for owners and device nodes")
	}
	src, dst := t.TempDir(), t.TempDir()
	p := func(rel string) string { return filepath.Join(src, rel) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(p("dir/sub"), 0o755))
	must(os.WriteFile(p("dir/setuid"), []byte("suid"), 0o644))
	must(os.Chown(p("dir/setuid"), 1000, 1000))
	must(unix.Chmod(p("dir/setuid"), 0o4755))
	must(os.WriteFile(p("link1"), []byte("shared"), 0o600))
	must(os.Link(p("link1"), p("dir/link2")))
	must(os.Symlink("../link1", p("dir/sym")))
	must(os.Lchown(p("dir/sym"), 1001, 1002))
	must(unix.Mknod(p("whiteout"), unix.S_IFCHR, 0))
	must(unix.Mknod(p("fifo"), unix.S_IFIFO|0o640, 0))
	must(unix.Setxattr(p("dir/sub"), "trusted.overlay.opaque", []byte("y"), 0))
	must(unix.Setxattr(p("link1"), "user.note", []byte("hello"), 0))
	must(unix.Chmod(p("dir"), 0o700))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, rel := range []string{"dir/setuid", "link1", "dir/sub", "dir"} {
		must(os.Chtimes(p(rel), old, old))
	}
	must(unix.Lutimes(p("dir/sym"), []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}))

	if err := copyTree(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"dir", "dir/sub", "dir/setuid", "link1", "dir/link2", "dir/sym", "whiteout", "fifo"} {
		var a, b unix.Stat_t
		must(unix.Lstat(filepath.Join(src, rel), &a))
		must(unix.Lstat(filepath.Join(dst, rel), &b))
		if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev || a.Size != b.Size {
			t.Errorf("%s: mode %o/%o uid %d/%d gid %d/%d rdev %d/%d size %d/%d", rel,
				a.Mode, b.Mode, a.Uid, b.Uid, a.Gid, b.Gid, a.Rdev, b.Rdev, a.Size, b.Size)
		}
		if a.Mode&unix.S_IFMT != unix.S_IFDIR && a.Mtim != b.Mtim {
			t.Errorf("%s: mtime %v, want %v", rel, b.Mtim, a.Mtim)
		}
	}
	var d unix.Stat_t
	must(unix.Lstat(filepath.Join(dst, "dir"), &d))
	if time.Unix(d.Mtim.Unix()).UTC() != old {
		t.Errorf("dir mtime %v, want %v (set after its contents)", time.Unix(d.Mtim.Unix()), old)
	}
	var l1, l2 unix.Stat_t
	must(unix.Lstat(filepath.Join(dst, "link1"), &l1))
	must(unix.Lstat(filepath.Join(dst, "dir/link2"), &l2))
	if l1.Ino != l2.Ino || l1.Nlink != 2 {
		t.Errorf("hard link not kept: inodes %d %d nlink %d", l1.Ino, l2.Ino, l1.Nlink)
	}
	if target, _ := os.Readlink(filepath.Join(dst, "dir/sym")); target != "../link1" {
		t.Errorf("symlink target %q", target)
	}
	for _, x := range []struct{ rel, name, want string }{
		{"dir/sub", "trusted.overlay.opaque", "y"},
		{"link1", "user.note", "hello"},
	} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(dst, x.rel), x.name, buf)
		if err != nil || string(buf[:n]) != x.want {
			t.Errorf("%s %s = %q, %v", x.rel, x.name, buf[:n], err)
		}
	}
}
