package client

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

func TestParseIDMapping(t *testing.T) {
	for _, tc := range []struct {
		in             string
		cid, hid, size uint32
		invalid        bool
	}{
		{"0:100000:65536", 0, 100000, 65536, false},
		{"1000:2000:1", 1000, 2000, 1, false},
		{"0:4294967294:1", 0, 4294967294, 1, false},
		{"0:100000", 0, 0, 0, true},
		{"0:100000:65536:1", 0, 0, 0, true},
		{"0:100000:0", 0, 0, 0, true},
		{"a:1:1", 0, 0, 0, true},
		{"-1:1:1", 0, 0, 0, true},
		{"0:4294967295:2", 0, 0, 0, true},
		{"0:4294967296:1", 0, 0, 0, true},
		{"", 0, 0, 0, true},
	} {
		cid, hid, size, err := ParseIDMapping(tc.in)
		if tc.invalid {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("%q: err %v, want invalid argument", tc.in, err)
			}
			continue
		}
		if err != nil || cid != tc.cid || hid != tc.hid || size != tc.size {
			t.Errorf("%q: %d %d %d %v", tc.in, cid, hid, size, err)
		}
	}
}

// shiftOwners moves every owner up, symlinks themselves and not their
// targets, and keeps set-user-ID and set-group-ID bits.
func TestShiftOwners(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("needs root (chown)")
	}
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(root, "dir"), 0o755)
	os.WriteFile(filepath.Join(root, "dir", "suid"), []byte("x"), 0o755)
	os.Chmod(filepath.Join(root, "dir", "suid"), 0o755|os.ModeSetuid|os.ModeSetgid)
	os.WriteFile(filepath.Join(root, "owned"), []byte("x"), 0o600)
	os.Lchown(filepath.Join(root, "owned"), 1000, 50)
	os.Symlink(outside, filepath.Join(root, "link"))
	if err := shiftOwners(root, 100000, 200000); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path     string
		uid, gid uint32
	}{
		{".", 100000, 200000}, {"dir", 100000, 200000}, {"dir/suid", 100000, 200000},
		{"owned", 101000, 200050}, {"link", 100000, 200000},
	} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(root, tc.path), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != tc.uid || st.Gid != tc.gid {
			t.Errorf("%s: %d:%d, want %d:%d", tc.path, st.Uid, st.Gid, tc.uid, tc.gid)
		}
	}
	if fi, _ := os.Stat(filepath.Join(root, "dir", "suid")); fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != os.ModeSetuid|os.ModeSetgid {
		t.Errorf("suid/sgid bits lost: %v", fi.Mode())
	}
	var st syscall.Stat_t
	syscall.Stat(outside, &st)
	if st.Uid != 0 {
		t.Errorf("symlink target outside the tree chowned to %d", st.Uid)
	}
	// An owner shifted past the largest id is refused.
	os.Lchown(filepath.Join(root, "owned"), 4294967000, 0)
	if err := shiftOwners(root, 1000, 0); !errdefs.IsInvalidArgument(err) {
		t.Errorf("overflow: %v", err)
	}
}
