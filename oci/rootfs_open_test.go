package oci

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadRootfsFile(t *testing.T) {
	root := fakeRootfs(t, map[string]string{"etc/hosts": "ok", "a/b/c": "deep"})
	mkdir(t, root, "dir")
	symlink(t, "loop2", root, "loop1")
	symlink(t, "loop1", root, "loop2")
	symlink(t, "/a/b", root, "ab")
	symlink(t, "../../../../a/./b/c", root, "dir/rel")
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want string
		err  error
	}{
		{"/etc/hosts", "ok", nil},
		{"etc/hosts", "ok", nil},
		{"/../../etc/hosts", "ok", nil},
		{"/a/../a/b/c", "deep", nil},
		{"/ab/c", "deep", nil},
		{"/dir/rel", "deep", nil},
		{"/missing", "", fs.ErrNotExist},
		{"/etc/hosts/x", "", unix.ENOTDIR},
		{"/loop1", "", unix.ELOOP},
		{"/fifo", "", unix.EINVAL},
		{"/dir", "", unix.EISDIR},
		{"/", "", unix.EISDIR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := readRootfsFile(root, tc.name)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || string(b) != tc.want {
				t.Fatalf("got %q, %v", b, err)
			}
		})
	}
}

func TestParseAccountFiles(t *testing.T) {
	users := parsePasswd([]byte(testPasswd))
	if len(users) != 4 || users[2].name != "alice" || users[2].uid != 1000 {
		t.Fatalf("users %+v", users)
	}
	groups := parseGroup([]byte(testGroup + "\n\nbad\nx:x:-1:\n"))
	if len(groups) != 6 || groups[5].name != "audio" || len(groups[5].members) != 2 || groups[5].members[0] != "bob" {
		t.Fatalf("groups %+v", groups)
	}
}
