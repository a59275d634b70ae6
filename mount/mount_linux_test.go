package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mount tests need root")
	}
}

// mountPoint makes an empty dir whose mounts are undone when the test ends,
// even if it fails halfway.
func mountPoint(t *testing.T, parent, name string) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmountAll(dir, unix.MNT_DETACH) })
	return dir
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		opts        []string
		flags, prop uintptr
		data        []string
	}{
		{[]string{"ro", "nosuid"}, unix.MS_RDONLY | unix.MS_NOSUID, 0, nil},
		{[]string{"ro", "rw"}, 0, 0, nil},
		{[]string{"rbind", "rprivate"}, unix.MS_BIND | unix.MS_REC, unix.MS_PRIVATE | unix.MS_REC, nil},
		{[]string{"bind", "slave", "x-berth.note"}, unix.MS_BIND, unix.MS_SLAVE, nil},
		{[]string{"lowerdir=/a:/b", "index=off", "nodev"}, unix.MS_NODEV, 0, []string{"lowerdir=/a:/b", "index=off"}},
		{[]string{"size=1m", "mode=755", "noexec", "exec"}, 0, 0, []string{"size=1m", "mode=755"}},
	} {
		p := parseOptions(tc.opts)
		if p.flags != tc.flags || p.propagation != tc.prop || strings.Join(p.data, ",") != strings.Join(tc.data, ",") {
			t.Errorf("parseOptions(%v) = %#x %#x %v; want %#x %#x %v", tc.opts, p.flags, p.propagation, p.data, tc.flags, tc.prop, tc.data)
		}
	}
}

func TestReadOnly(t *testing.T) {
	for _, tc := range []struct {
		m    Mount
		want bool
	}{
		{Mount{Type: "bind", Options: []string{"rbind", "ro"}}, true},
		{Mount{Type: "bind", Options: []string{"rbind", "rw"}}, false},
		{Mount{Type: "bind", Options: []string{"ro", "rw"}}, false},
		{Mount{Type: "overlay", Options: []string{"lowerdir=/a:/b"}}, true},
		{Mount{Type: "overlay", Options: []string{"lowerdir=/a", "upperdir=/u", "workdir=/w"}}, false},
		{Mount{Type: "tmpfs"}, false},
	} {
		if got := ReadOnly(tc.m); got != tc.want {
			t.Errorf("ReadOnly(%+v) = %v", tc.m, got)
		}
	}
}

func TestJoinTarget(t *testing.T) {
	for _, tc := range []struct {
		target, want string
		ok           bool
	}{
		{"", "/r", true},
		{"proc", "/r/proc", true},
		{"/dev/shm/", "/r/dev/shm", true},
		{"a/../../etc", "", false},
		{"..", "", false},
		{"a\x00b", "", false},
	} {
		got, err := joinTarget("/r", tc.target)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("joinTarget(%q) = %q, %v", tc.target, got, err)
		}
	}
}

func TestBindMounts(t *testing.T) {
	requireRoot(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeFile(t, filepath.Join(src, "file"), "hello")
	for _, tc := range []struct {
		name     string
		m        Mount
		readOnly bool
	}{
		{"bind-rw", Mount{Type: "bind", Source: src, Options: []string{"rbind", "rw"}}, false},
		{"bind-ro", Mount{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}, true},
		{"none-bind-ro", Mount{Type: "none", Source: src, Options: []string{"bind", "ro", "nosuid"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := mountPoint(t, tmp, tc.name)
			if err := All([]Mount{tc.m}, target); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(target, "file")); got != "hello" {
				t.Fatalf("read %q", got)
			}
			err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644)
			if tc.readOnly && !errors.Is(err, unix.EROFS) {
				t.Fatalf("write on read-only bind: %v", err)
			}
			if !tc.readOnly && err != nil {
				t.Fatalf("write on rw bind: %v", err)
			}
			info, err := Lookup(target)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mountpoint != target || strings.Contains(info.Options, "ro") != tc.readOnly {
				t.Fatalf("lookup = %+v", info)
			}
			if err := UnmountAll(target, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(target, "file")); !os.IsNotExist(err) {
				t.Fatalf("still mounted after UnmountAll: %v", err)
			}
		})
	}
}

func TestTmpfsPropagationAndSubTargets(t *testing.T) {
	requireRoot(t)
	target := mountPoint(t, t.TempDir(), "root")
	mounts := []Mount{
		{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=755", "nosuid", "shared"}},
		{Type: "tmpfs", Source: "tmpfs", Target: "sub", Options: []string{"size=1m", "ro"}},
	}
	// The sub target lives on the first mount, so create it between steps.
	if err := All(mounts[:1], target); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(target, "sub"), 0o755)
	t.Cleanup(func() { UnmountAll(filepath.Join(target, "sub"), unix.MNT_DETACH) })
	if err := All(mounts[1:], target); err != nil {
		t.Fatal(err)
	}
	root, err := Lookup(target)
	if err != nil {
		t.Fatal(err)
	}
	if root.FSType != "tmpfs" || !strings.Contains(root.Optional, "shared:") || !strings.Contains(root.Options, "nosuid") {
		t.Fatalf("root mount %+v", root)
	}
	sub, err := Lookup(filepath.Join(target, "sub", "."))
	if err != nil {
		t.Fatal(err)
	}
	if sub.Mountpoint != filepath.Join(target, "sub") || !strings.HasPrefix(sub.Options, "ro") {
		t.Fatalf("sub mount %+v", sub)
	}
}

func TestAllRollsBack(t *testing.T) {
	requireRoot(t)
	target := mountPoint(t, t.TempDir(), "root")
	err := All([]Mount{
		{Type: "tmpfs", Source: "tmpfs"},
		{Type: "bind", Source: "/nonexistent-berth-source", Target: "x", Options: []string{"rbind"}},
	}, target)
	if err == nil || !strings.Contains(err.Error(), "nonexistent-berth-source") {
		t.Fatalf("All = %v", err)
	}
	if info, _ := Lookup(target); info.Mountpoint == target {
		t.Fatalf("first mount left after failure: %+v", info)
	}
	if err := All([]Mount{{Type: "tmpfs", Target: "../escape"}}, target); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("escaping target: %v", err)
	}
}

func TestUnmountAllStacked(t *testing.T) {
	requireRoot(t)
	target := mountPoint(t, t.TempDir(), "stack")
	for i := range 3 {
		if err := (&Mount{Type: "tmpfs", Source: fmt.Sprintf("tmpfs%d", i)}).Mount(target); err != nil {
			t.Fatal(err)
		}
	}
	if info, _ := Lookup(target); info.Source != "tmpfs2" {
		t.Fatalf("top of stack %+v", info)
	}
	if err := UnmountAll(target, 0); err != nil {
		t.Fatal(err)
	}
	if info, _ := Lookup(target); info.Mountpoint == target {
		t.Fatal("still mounted")
	}
	if err := UnmountAll(target, 0); err != nil {
		t.Fatalf("UnmountAll of unmounted dir: %v", err)
	}
	if err := Unmount(target, 0); err == nil {
		t.Fatal("Unmount of unmounted dir succeeded")
	}
}

func overlayDirs(t *testing.T, base string, n int) (lowers []string, upper, work string) {
	t.Helper()
	for i := range n {
		dir := filepath.Join(base, fmt.Sprintf("%d", i), "fs")
		writeFile(t, filepath.Join(dir, fmt.Sprintf("layer%d", i)), fmt.Sprint(i))
		writeFile(t, filepath.Join(dir, "top"), fmt.Sprint(i))
		lowers = append(lowers, dir)
	}
	upper, work = filepath.Join(base, "upper", "fs"), filepath.Join(base, "upper", "work")
	os.MkdirAll(upper, 0o755)
	os.MkdirAll(work, 0o755)
	return lowers, upper, work
}

func TestOverlay(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name   string
		layers int
		deep   bool // put layers under a long path so options pass a page
	}{
		{"short", 3, false},
		{"long-options", 40, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			if tc.deep {
				base = filepath.Join(base, strings.Repeat("d", 200), strings.Repeat("e", 200))
			}
			lowers, upper, work := overlayDirs(t, base, tc.layers)
			// lowerdir lists the nearest layer first; the last one made wins.
			rev := make([]string, len(lowers))
			for i, l := range lowers {
				rev[len(lowers)-1-i] = l
			}
			m := Mount{Type: "overlay", Source: "overlay", Options: []string{
				"lowerdir=" + strings.Join(rev, ":"), "upperdir=" + upper, "workdir=" + work,
			}}
			if tc.deep && len(strings.Join(m.Options, ",")) < pageSize() {
				t.Fatalf("test options too short to exercise the page limit")
			}
			cwd, _ := os.Getwd()
			target := mountPoint(t, t.TempDir(), "merged")
			if err := All([]Mount{m}, target); err != nil {
				t.Fatal(err)
			}
			if now, _ := os.Getwd(); now != cwd {
				t.Fatalf("process cwd changed to %q", now)
			}
			if got := readFile(t, filepath.Join(target, "top")); got != fmt.Sprint(tc.layers-1) {
				t.Fatalf("top = %q", got)
			}
			if got := readFile(t, filepath.Join(target, "layer0")); got != "0" {
				t.Fatalf("layer0 = %q", got)
			}
			writeFile(t, filepath.Join(target, "written"), "w")
			if got := readFile(t, filepath.Join(upper, "written")); got != "w" {
				t.Fatalf("upper has %q", got)
			}
			if err := UnmountAll(target, 0); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWithTempMount(t *testing.T) {
	requireRoot(t)
	if err := SetTempLocation(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { SetTempLocation(os.TempDir()) })
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), "data")
	mounts := []Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}
	var seen string
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		fn   func(string) error
		want error
	}{
		{"ok", func(root string) error {
			seen = root
			if got := readFile(t, filepath.Join(root, "f")); got != "data" {
				return fmt.Errorf("read %q", got)
			}
			return nil
		}, nil},
		{"fn-fails", func(root string) error { seen = root; return boom }, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WithTempMount(context.Background(), mounts, tc.fn)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("WithTempMount = %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(seen); !os.IsNotExist(err) {
				t.Fatalf("temp mount point %q left behind: %v", seen, err)
			}
		})
	}
	if got := readFile(t, filepath.Join(src, "f")); got != "data" {
		t.Fatal("source damaged")
	}
}
