package oci

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// overlayLayers builds three layers (top first: upper, mid, low) with
// whiteouts, an opaque directory, a directory over a file and symlinks
// across layers.
func overlayLayers(t *testing.T) RootfsLayers {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: whiteouts are device nodes and opaque directories trusted.* xattrs")
	}
	low := fakeRootfs(t, map[string]string{
		"etc/group":       "low-group",
		"etc/passwd":      "low-passwd",
		"etc/hosts":       "low-hosts",
		"opaque/old":      "hidden by mid's opaque dir",
		"gone/file":       "hidden by mid's whiteout",
		"wasfile":         "a file under upper's directory",
		"real/target":     "through a link",
		"deep/a/b/c":      "deep-low",
		"merged/from-low": "low part of a merged dir",
	})
	mid := fakeRootfs(t, map[string]string{
		"etc/passwd":      "mid-passwd",
		"opaque/new":      "mid's own",
		"merged/from-mid": "mid part of a merged dir",
	})
	upper := fakeRootfs(t, map[string]string{
		"etc/passwd":  "upper-passwd",
		"wasfile/x":   "upper dir over a lower file",
		"merged/here": "upper part",
	})
	whiteout(t, mid, "gone")
	whiteout(t, upper, "etc/hosts")
	if err := unix.Setxattr(filepath.Join(mid, "opaque"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatalf("set opaque xattr: %v", err)
	}
	symlink(t, "/real", mid, "abs")                 // absolute: restarts at the merged root
	symlink(t, "real/../real/target", upper, "rel") // relative
	symlink(t, "/etc/../etc/group", upper, "grouplink")
	mkdir(t, upper, "deep/a")
	return RootfsLayers{Dirs: []string{upper, mid, low}, Overlay: true}
}

func whiteout(t *testing.T, root, p string) {
	t.Helper()
	full := filepath.Join(root, p)
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := unix.Mknod(full, unix.S_IFCHR|0o000, 0); err != nil {
		t.Fatalf("whiteout %s: %v", p, err)
	}
}

var layerCases = []struct {
	name string
	want string
	err  error
}{
	{"/etc/passwd", "upper-passwd", nil},
	{"/etc/group", "low-group", nil},
	{"/etc/hosts", "", fs.ErrNotExist},
	{"/gone/file", "", fs.ErrNotExist},
	{"/opaque/new", "mid's own", nil},
	{"/opaque/old", "", fs.ErrNotExist},
	{"/wasfile/x", "upper dir over a lower file", nil},
	{"/merged/here", "upper part", nil},
	{"/merged/from-mid", "mid part of a merged dir", nil},
	{"/merged/from-low", "low part of a merged dir", nil},
	{"/rel", "through a link", nil},
	{"/abs/target", "through a link", nil},
	{"/grouplink", "low-group", nil},
	{"/deep/a/b/c", "deep-low", nil},
	{"/deep/a/b/../../a/b/c", "deep-low", nil},
	{"/../../etc/passwd", "upper-passwd", nil},
	{"/etc", "", unix.EISDIR},
	{"/etc/passwd/x", "", unix.ENOTDIR},
	{"/missing", "", fs.ErrNotExist},
}

func TestReadLayersFile(t *testing.T) {
	l := overlayLayers(t)
	for _, tc := range layerCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := readLayersFile(l, tc.name)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || string(b) != tc.want {
				t.Fatalf("got %q, %v; want %q", b, err, tc.want)
			}
		})
	}
}

// TestReadLayersFileMatchesKernel mounts the same layers as a real overlay
// and checks that the kernel sees what the reader sees, for every case
// without an absolute symlink (which the kernel would resolve on the host).
func TestReadLayersFileMatchesKernel(t *testing.T) {
	l := overlayLayers(t)
	mnt, work := t.TempDir(), t.TempDir()
	opts := "index=off,lowerdir=" + strings.Join(l.Dirs[1:], ":") + ",upperdir=" + l.Dirs[0] + ",workdir=" + work
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	for _, tc := range layerCases {
		if strings.HasPrefix(tc.name, "/abs") || tc.name == "/grouplink" || strings.HasPrefix(tc.name, "/..") {
			continue
		}
		ours, ourErr := readLayersFile(l, tc.name)
		kernel, kernelErr := os.ReadFile(filepath.Join(mnt, tc.name))
		if (ourErr == nil) != (kernelErr == nil) || string(ours) != string(kernel) {
			t.Errorf("%s: reader %q, %v; kernel %q, %v", tc.name, ours, ourErr, kernel, kernelErr)
		}
	}
}

// Layouts the reader does not implement make it step aside, and
// withRootfs then mounts the rootfs (here: reads the fallback directory).
func TestReadLayersFileUnsupported(t *testing.T) {
	l := overlayLayers(t)
	if err := unix.Setxattr(filepath.Join(l.Dirs[2], "etc"), "trusted.overlay.redirect", []byte("/elsewhere"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := readLayersFile(l, "/etc/group"); !errors.Is(err, errLayoutUnsupported) {
		t.Fatalf("redirected dir: %v", err)
	}
	l = overlayLayers(t)
	if err := unix.Setxattr(filepath.Join(l.Dirs[0], "etc/passwd"), "trusted.overlay.metacopy", nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := readLayersFile(l, "/etc/passwd"); !errors.Is(err, errLayoutUnsupported) {
		t.Fatalf("metacopy file: %v", err)
	}

	fallback := fakeRootfs(t, map[string]string{"etc/passwd": "alice:x:1000:1000::/:/bin/sh\n"})
	mounted := false
	ci := &ContainerInfo{ID: "c", Namespace: "ns", Layers: &l, Rootfs: func(ctx context.Context, fn func(string) error) error {
		mounted = true
		return fn(fallback)
	}}
	s := &specs.Spec{Process: &specs.Process{}}
	if err := WithUser("alice")(context.Background(), ci, s); err != nil || s.Process.User.UID != 1000 || !mounted {
		t.Fatalf("fallback: %+v %v mounted=%v", s.Process.User, err, mounted)
	}
	// A layout it handles never mounts.
	l = overlayLayers(t)
	mounted = false
	ci.Layers = &l
	if err := WithUser("0")(context.Background(), ci, s); err != nil || mounted {
		t.Fatalf("layers: %v mounted=%v", err, mounted)
	}
}
