package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCgroupMounts(t *testing.T) {
	for _, tc := range []struct {
		name, mountinfo string
		want            []string
	}{
		{"hybrid", `22 27 0:21 / /proc rw,relatime - proc proc rw
30 27 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:9 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
`, []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory"}},
		{"unified", "40 1 0:35 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", []string{"/sys/fs/cgroup"}},
		// Mounted twice (bind): listed once. An escaped space is undone.
		{"twice and escaped", `41 1 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
42 1 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
43 1 0:31 / /mnt/my\040cg rw - cgroup2 none rw
`, []string{"/sys/fs/cgroup/memory", "/mnt/my cg"}},
		// No separator, or a cgroup word in the wrong field: not a mount.
		{"malformed", "1 2 3 / /x rw cgroup cgroup\n7 8 0:1 / /y rw - ext4 cgroup rw\n\n-\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mountinfo")
			if err := os.WriteFile(path, []byte(tc.mountinfo), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := cgroupMounts(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRemoveNamespaceCgroupRefusesBadNames(t *testing.T) {
	for _, ns := range []string{"", "..", "a/b", "../x", "/abs"} {
		if err := removeNamespaceCgroup(ns); err == nil {
			t.Errorf("%q: accepted", ns)
		}
	}
}
