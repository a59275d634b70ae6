package v2

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A bundle is 0700, except for a container in a new user namespace: its
// root's host gid may search it (0710), to reach the rootfs.
func TestBundleUserNamespacePermissions(t *testing.T) {
	userns := func(path string, gids ...specs.LinuxIDMapping) []byte {
		s := specs.Spec{Linux: &specs.Linux{
			Namespaces:  []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.UserNamespace, Path: path}},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 123456, Size: 65536}},
			GIDMappings: gids,
		}}
		b, _ := json.Marshal(s)
		return b
	}
	plain, _ := json.Marshal(specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}}}})
	for _, tc := range []struct {
		name string
		spec []byte
		mode os.FileMode
		gid  uint32
	}{
		{"no user namespace", plain, 0o700, 0},
		{"new user namespace", userns("", specs.LinuxIDMapping{ContainerID: 0, HostID: 123456, Size: 65536}), 0o710, 123456},
		{"root gid in a later mapping", userns("", specs.LinuxIDMapping{ContainerID: 1, HostID: 5000, Size: 10}, specs.LinuxIDMapping{ContainerID: 0, HostID: 7000, Size: 1}), 0o710, 7000},
		{"joined user namespace", userns("/proc/1/ns/user", specs.LinuxIDMapping{ContainerID: 0, HostID: 123456, Size: 1}), 0o700, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			b, err := newBundle(context.Background(), state, "ns", "id", tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(b.Path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.mode || fi.Sys().(*syscall.Stat_t).Gid != tc.gid {
				t.Fatalf("bundle %v group %d, want %v group %d", fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid, tc.mode, tc.gid)
			}
		})
	}
	// A spec that claims mappings but is not JSON: refused, nothing left.
	state := t.TempDir()
	if _, err := newBundle(context.Background(), state, "ns", "bad", []byte(`{"gidMappings": [`)); err == nil {
		t.Fatal("bad spec accepted")
	}
	if _, err := os.Stat(filepath.Join(state, "ns", "bad")); !os.IsNotExist(err) {
		t.Fatalf("bundle left: %v", err)
	}
}
