package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:100::/home/bob:/bin/sh
+nis::::::
broken:x:notanumber:1::/:/bin/sh
huge:x:4294967295:0::/:/bin/sh
`

const testGroup = `root:x:0:
daemon:x:1:
users:x:100:alice
wheel:x:10:alice,bob
alice:x:1000:
audio:x:29: bob , alice
`

// fakeRootfs writes files (path -> content) under a new temp dir.
func fakeRootfs(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestWithUser(t *testing.T) {
	root := fakeRootfs(t, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
	for _, tc := range []struct {
		user string
		want specs.User
		kind func(error) bool // nil: success
	}{
		{"0", specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}}, nil},
		{"root", specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}}, nil},
		{"alice", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 100, 10, 29}}, nil},
		{"1000", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 100, 10, 29}}, nil},
		{"bob", specs.User{UID: 1001, GID: 100, AdditionalGids: []uint32{100, 10, 29}}, nil},
		{"alice:wheel", specs.User{UID: 1000, GID: 10, AdditionalGids: []uint32{10, 100, 29}}, nil},
		{"alice:5", specs.User{UID: 1000, GID: 5, AdditionalGids: []uint32{5, 100, 10, 29}}, nil},
		{"1001:audio", specs.User{UID: 1001, GID: 29, AdditionalGids: []uint32{29, 10}}, nil},
		{"2000", specs.User{UID: 2000, GID: 0, AdditionalGids: []uint32{0}}, nil},
		{"2000:3000", specs.User{UID: 2000, GID: 3000, AdditionalGids: []uint32{3000}}, nil},
		{"mallory", specs.User{}, errdefs.IsNotFound},
		{"alice:nogroup", specs.User{}, errdefs.IsNotFound},
		{"broken", specs.User{}, errdefs.IsNotFound},
		{"+nis", specs.User{}, errdefs.IsNotFound},
		{"", specs.User{}, errdefs.IsInvalidArgument},
		{":0", specs.User{}, errdefs.IsInvalidArgument},
		{"alice:", specs.User{}, errdefs.IsInvalidArgument},
		{"a:b:c", specs.User{}, errdefs.IsInvalidArgument},
		{"4294967295", specs.User{}, errdefs.IsInvalidArgument},
		{"1:2147483648", specs.User{}, errdefs.IsInvalidArgument},
	} {
		t.Run(tc.user, func(t *testing.T) {
			s := defaultSpec("ns", "id")
			err := WithUser(tc.user)(context.Background(), &ContainerInfo{Rootfs: RootfsDir(root)}, s)
			if tc.kind != nil {
				if !tc.kind(err) {
					t.Fatalf("err %v, wrong kind", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Process.User, tc.want) {
				t.Fatalf("user %+v, want %+v", s.Process.User, tc.want)
			}
		})
	}
}

func TestUserWithoutAccountFiles(t *testing.T) {
	empty := fakeRootfs(t, nil)
	for _, tc := range []struct {
		name   string
		rootfs RootfsFunc
		opt    SpecOpts
		want   specs.User
		kind   func(error) bool
	}{
		{"numeric, no files", RootfsDir(empty), WithUser("1000"), specs.User{UID: 1000, AdditionalGids: []uint32{0}}, nil},
		{"numeric pair, no rootfs", nil, WithUser("7:8"), specs.User{UID: 7, GID: 8, AdditionalGids: []uint32{8}}, nil},
		{"uid, no rootfs", nil, WithUserID(5), specs.User{UID: 5, AdditionalGids: []uint32{0}}, nil},
		{"name, no files", RootfsDir(empty), WithUser("alice"), specs.User{}, errdefs.IsNotFound},
		{"group name, no files", RootfsDir(empty), WithUser("0:wheel"), specs.User{}, errdefs.IsNotFound},
		{"name, no rootfs", nil, WithUsername("alice"), specs.User{}, errdefs.IsFailedPrecondition},
		{"group name, no rootfs", nil, WithUser("0:wheel"), specs.User{}, errdefs.IsFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := defaultSpec("ns", "id")
			err := tc.opt(context.Background(), &ContainerInfo{Rootfs: tc.rootfs}, s)
			if tc.kind != nil {
				if !tc.kind(err) {
					t.Fatalf("err %v, wrong kind", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Process.User, tc.want) {
				t.Fatalf("user %+v, want %+v", s.Process.User, tc.want)
			}
		})
	}
}

func TestUserOptsKeepUmaskAndUseRootfsFunc(t *testing.T) {
	root := fakeRootfs(t, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
	calls := 0
	rootfs := func(ctx context.Context, fn func(string) error) error {
		calls++
		return fn(root)
	}
	umask := uint32(0o27)
	s := defaultSpec("ns", "id")
	s.Process.User.Umask = &umask
	if err := WithUsername("bob")(context.Background(), &ContainerInfo{Rootfs: rootfs}, s); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || s.Process.User.UID != 1001 || s.Process.User.Umask == nil || *s.Process.User.Umask != 0o27 {
		t.Fatalf("calls %d user %+v", calls, s.Process.User)
	}
	mountErr := errors.New("mount failed")
	err := WithUser("bob")(context.Background(), &ContainerInfo{Rootfs: func(context.Context, func(string) error) error { return mountErr }}, s)
	if !errors.Is(err, mountErr) {
		t.Fatalf("err %v", err)
	}
}

// TestUserLookupStaysInRootfs plants host-side account files and tries to
// reach them through symlinks in the image; none may be read.
func TestUserLookupStaysInRootfs(t *testing.T) {
	outside := fakeRootfs(t, map[string]string{
		"passwd": "evil:x:4242:4242::/:/bin/sh\n",
		"group":  "evil:x:4242:evil\n",
	})
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
	}{
		{"absolute file link", func(t *testing.T, root string) {
			mkdir(t, root, "etc")
			symlink(t, filepath.Join(outside, "passwd"), root, "etc/passwd")
			symlink(t, filepath.Join(outside, "group"), root, "etc/group")
		}},
		{"relative file link", func(t *testing.T, root string) {
			mkdir(t, root, "etc")
			rel, _ := filepath.Rel(filepath.Join(root, "etc"), filepath.Join(outside, "passwd"))
			symlink(t, rel, root, "etc/passwd")
		}},
		{"deep dotdot link", func(t *testing.T, root string) {
			mkdir(t, root, "etc")
			symlink(t, "../../../../../../../../.."+outside+"/passwd", root, "etc/passwd")
		}},
		{"etc dir link", func(t *testing.T, root string) {
			symlink(t, outside, root, "etc")
		}},
		{"symlink chain", func(t *testing.T, root string) {
			mkdir(t, root, "etc")
			symlink(t, "../hop", root, "etc/passwd")
			symlink(t, "/../..", root, "up")
			symlink(t, "up"+outside+"/passwd", root, "hop")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.setup(t, root)
			s := defaultSpec("ns", "id")
			err := WithUser("evil")(context.Background(), &ContainerInfo{Rootfs: RootfsDir(root)}, s)
			if err == nil || s.Process.User.UID == 4242 {
				t.Fatalf("resolved a user from outside the rootfs: %+v err %v", s.Process.User, err)
			}
			// A numeric user still works: the escaping file reads as absent.
			if err := WithUser("4242")(context.Background(), &ContainerInfo{Rootfs: RootfsDir(root)}, s); err != nil {
				t.Fatal(err)
			}
			if s.Process.User.GID != 0 {
				t.Fatalf("gid %d came from outside the rootfs", s.Process.User.GID)
			}
		})
	}
}

func TestUserLookupFollowsLinksInsideRootfs(t *testing.T) {
	root := fakeRootfs(t, map[string]string{"usr/lib/accounts/passwd": testPasswd})
	mkdir(t, root, "etc")
	symlink(t, "/usr/lib/accounts/passwd", root, "etc/passwd")
	s := defaultSpec("ns", "id")
	if err := WithUser("alice")(context.Background(), &ContainerInfo{Rootfs: RootfsDir(root)}, s); err != nil {
		t.Fatal(err)
	}
	if s.Process.User.UID != 1000 {
		t.Fatalf("user %+v", s.Process.User)
	}
}

func mkdir(t *testing.T, root, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, root, p string) {
	t.Helper()
	if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
		t.Fatal(err)
	}
}
