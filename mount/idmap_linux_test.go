package mount

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

func TestParseIDMap(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want IDMap
		err  bool
	}{
		{in: "0:100000:65536", want: IDMap{0, 100000, 65536}},
		{in: "1000:2000:1", want: IDMap{1000, 2000, 1}},
		{in: "0:4294967295:1", want: IDMap{0, 4294967295, 1}},
		{in: "0:4294967295:2", err: true},
		{in: "0:0:0", err: true},
		{in: "0:1000", err: true},
		{in: "0:1000:1:1", err: true},
		{in: "a:1:1", err: true},
		{in: "-1:1:1", err: true},
		{in: "", err: true},
	} {
		got, err := ParseIDMap(tc.in)
		if tc.err {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("ParseIDMap(%q) = %v, %v; want InvalidArgument", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseIDMap(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
	if _, _, _, _, err := takeIDMaps([]string{"ro", "uidmap=0:1000:10"}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("uidmap without gidmap: %v", err)
	}
	rest, uid, gid, ok, err := takeIDMaps([]string{"lowerdir=/a", "uidmap=0:1000:10", "gidmap=0:2000:10"})
	if err != nil || !ok || uid != (IDMap{0, 1000, 10}) || gid != (IDMap{0, 2000, 10}) || len(rest) != 1 {
		t.Errorf("takeIDMaps = %v %v %v %v %v", rest, uid, gid, ok, err)
	}
}

func owner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// Idmapped bind and overlay mounts show the tree's root-owned files as
// owned by the mapped host ids.
func TestIDMappedMounts(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	lower := filepath.Join(dir, "lower")
	writeFile(t, filepath.Join(lower, "etc", "passwd"), "root:x:0:0::/:/bin/sh\n")
	idmap := []string{"uidmap=0:100000:65536", "gidmap=0:200000:65536"}

	t.Run("bind", func(t *testing.T) {
		target := mountPoint(t, dir, "bind")
		m := Mount{Type: "bind", Source: lower, Options: append([]string{"ro", "rbind"}, idmap...)}
		if err := m.Mount(target); err != nil {
			t.Fatal(err)
		}
		if u, g := owner(t, filepath.Join(target, "etc", "passwd")); u != 100000 || g != 200000 {
			t.Fatalf("owner %d:%d, want 100000:200000", u, g)
		}
		if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err == nil {
			t.Fatal("read-only idmapped bind is writable")
		}
		if u, _ := owner(t, filepath.Join(lower, "etc", "passwd")); u != 0 {
			t.Fatalf("the source's owner changed to %d", u)
		}
	})

	t.Run("overlay", func(t *testing.T) {
		upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
		os.MkdirAll(upper, 0o755)
		os.MkdirAll(work, 0o700)
		os.Chown(upper, 100000, 200000)
		target := mountPoint(t, dir, "merged")
		m := Mount{Type: "overlay", Source: "overlay", Options: append([]string{
			"workdir=" + work, "upperdir=" + upper, "lowerdir=" + lower}, idmap...)}
		if err := m.Mount(target); err != nil {
			t.Fatal(err)
		}
		if u, g := owner(t, filepath.Join(target, "etc", "passwd")); u != 100000 || g != 200000 {
			t.Fatalf("owner %d:%d, want 100000:200000", u, g)
		}
		if u, _ := owner(t, target); u != 100000 {
			t.Fatalf("root dir owner %d, want 100000", u)
		}
		// Copy-up keeps the mapped owner in the upper dir.
		if err := os.WriteFile(filepath.Join(target, "etc", "passwd"), []byte("changed\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if u, g := owner(t, filepath.Join(upper, "etc", "passwd")); u != 100000 || g != 200000 {
			t.Fatalf("copied-up owner %d:%d, want 100000:200000", u, g)
		}
		if got := readFile(t, filepath.Join(lower, "etc", "passwd")); !strings.HasPrefix(got, "root:") {
			t.Fatalf("lower changed: %q", got)
		}
	})

	t.Run("other types refused", func(t *testing.T) {
		target := mountPoint(t, dir, "tmpfs")
		m := Mount{Type: "tmpfs", Source: "tmpfs", Options: idmap}
		if err := m.Mount(target); !errdefs.IsNotImplemented(err) {
			t.Fatalf("idmapped tmpfs: %v", err)
		}
	})
}

// FuzzParseIDMap: any string either parses to a mapping that prints back
// as a valid mapping within the 32-bit range, or is refused.
func FuzzParseIDMap(f *testing.F) {
	for _, s := range []string{"0:100000:65536", "0:4294967295:1", "1:2", "a:b:c", "0:0:0", "00:01:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseIDMap(s)
		if err != nil {
			return
		}
		if m.Size == 0 || uint64(m.HostID)+uint64(m.Size) > 1<<32 || uint64(m.ContainerID)+uint64(m.Size) > 1<<32 {
			t.Fatalf("%q parsed to out-of-range %v", s, m)
		}
		if again, err := ParseIDMap(m.String()); err != nil || again != m {
			t.Fatalf("%q: %v does not round-trip: %v %v", s, m, again, err)
		}
	})
}
