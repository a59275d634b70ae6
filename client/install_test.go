package client

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"

	introspectionapi "github.com/berth-containers/berth/api/services/introspection/v1"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images/testimage"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/platforms"
)

// tarEntry is one entry of a hand-made layer: hostile names, device nodes
// and links the test image builder would clean up or refuse.
type tarEntry struct {
	name     string
	typ      byte
	data     string
	link     string
	mode     int64
	uid, gid int
}

func reg(name, data string, mode int64) tarEntry {
	return tarEntry{name: name, typ: tar.TypeReg, data: data, mode: mode}
}
func sym(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hard(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}
func dir(name string) tarEntry { return tarEntry{name: name, typ: tar.TypeDir, mode: 0o755} }

func layerTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode,
			Uid: e.uid, Gid: e.gid, Size: int64(len(e.data)), ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if e.typ == tar.TypeChar {
			hdr.Devmajor, hdr.Devminor = 1, 3
		}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeBlob stores p in the content store.
func writeBlob(t *testing.T, ctx context.Context, cs content.Store, mt string, p []byte) ocispec.Descriptor {
	t.Helper()
	desc := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(p), Size: int64(len(p))}
	w, err := cs.Writer(ctx, content.WithRef("test-"+desc.Digest.Encoded()), content.WithDescriptor(desc))
	if err == nil {
		if _, err = w.Write(p); err == nil {
			err = w.Commit(ctx, desc.Size, desc.Digest)
		}
		w.Close()
	}
	if err != nil && !errdefs.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return desc
}

// rawManifest stores a manifest for platform whose layers are the given
// entries (plain tars) and returns its descriptor.
func rawManifest(t *testing.T, ctx context.Context, cs content.Store, platform ocispec.Platform, layers ...[]tarEntry) ocispec.Descriptor {
	t.Helper()
	var descs []ocispec.Descriptor
	var diffIDs []digest.Digest
	for _, l := range layers {
		d := writeBlob(t, ctx, cs, ocispec.MediaTypeImageLayer, layerTar(t, l))
		descs = append(descs, d)
		diffIDs = append(diffIDs, d.Digest)
	}
	cfg := writeDoc(t, ctx, cs, ocispec.MediaTypeImageConfig, ocispec.Image{
		Platform: platform,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	}, nil)
	m := writeDoc(t, ctx, cs, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfg,
		Layers:    descs,
	}, append([]ocispec.Descriptor{cfg}, descs...))
	m.Platform = &platform
	return m
}

// rawImage stores an image of this host's platform whose layers are the
// given entries and returns its handle.
func rawImage(t *testing.T, ctx context.Context, c *Client, name string, layers ...[]tarEntry) *Image {
	t.Helper()
	m := rawManifest(t, ctx, c.ContentStore(), platforms.Default(), layers...)
	m.Platform = nil
	return createImage(t, ctx, c, name, m)
}

func createImage(t *testing.T, ctx context.Context, c *Client, name string, target ocispec.Descriptor) *Image {
	t.Helper()
	info, err := c.ImageService().Create(ctx, ImageInfo{Name: name, Target: target})
	if err != nil {
		t.Fatal(err)
	}
	return NewImage(c, info)
}

// tree lists what is under root: "name" for directories ("/" appended),
// "name -> target" for symlinks, "name mode data" for files.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			out = append(out, rel+"/")
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			out = append(out, rel+" "+fi.Mode().String()+" "+string(data))
		default:
			out = append(out, rel+" "+fi.Mode().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestInstall(t *testing.T) {
	c, _ := newTestDaemon(t)
	ctx := namespaces.WithNamespace(context.Background(), "install")

	pkg := [][]tarEntry{{
		dir("bin/"),
		reg("bin/hello", "#!/bin/sh\necho hello\n", 0o755),
		reg("./bin/dotted", "dotted", 0o700), // "./" prefix: still bin/
		dir("bin/sub/"),
		reg("bin/sub/deep", "not directly in bin", 0o755),
		dir("lib/"),
		reg("lib/libx.so.1", "library", 0o644),
		sym("lib/libx.so", "libx.so.1"),
		reg("etc/passwd", "root::0:0::/:/bin/sh\n", 0o644),
		reg("usr/bin/other", "not bin/", 0o755),
		reg("bin", "a file named bin is not bin/", 0o644),
	}}

	for _, tc := range []struct {
		name     string
		layers   [][]tarEntry
		opts     []InstallOpts
		existing map[string]string // files in the install dir beforehand
		want     []string          // the install dir afterwards
		wantErr  string
	}{
		{
			name:   "bin only",
			layers: pkg,
			want:   []string{"bin/", "bin/dotted -rwx------ dotted", "bin/hello -rwxr-xr-x #!/bin/sh\necho hello\n", "bin/sub/"},
		},
		{
			name:   "libs",
			layers: pkg,
			opts:   []InstallOpts{WithInstallLibs},
			want: []string{"bin/", "bin/dotted -rwx------ dotted", "bin/hello -rwxr-xr-x #!/bin/sh\necho hello\n", "bin/sub/",
				"lib/", "lib/libx.so -> libx.so.1", "lib/libx.so.1 -rw-r--r-- library"},
		},
		{
			name:     "existing file without replace installs nothing",
			layers:   pkg,
			opts:     []InstallOpts{WithInstallLibs},
			existing: map[string]string{"bin/hello": "old"},
			want:     []string{"bin/", "bin/hello -rw-r--r-- old"},
			wantErr:  "cannot replace bin/hello in ",
		},
		{
			name:     "existing lib without replace",
			layers:   pkg,
			opts:     []InstallOpts{WithInstallLibs},
			existing: map[string]string{"lib/libx.so": "old"},
			want:     []string{"lib/", "lib/libx.so -rw-r--r-- old"},
			wantErr:  "cannot replace lib/libx.so in ",
		},
		{
			name:     "existing directory without replace",
			layers:   pkg,
			existing: map[string]string{"bin/sub/mine": "kept"},
			want:     []string{"bin/", "bin/sub/", "bin/sub/mine -rw-r--r-- kept"},
			wantErr:  "cannot replace bin/sub in ",
		},
		{
			name:     "existing lib is no conflict without libs",
			layers:   pkg,
			existing: map[string]string{"lib/libx.so": "old"},
			want: []string{"bin/", "bin/dotted -rwx------ dotted", "bin/hello -rwxr-xr-x #!/bin/sh\necho hello\n", "bin/sub/",
				"lib/", "lib/libx.so -rw-r--r-- old"},
		},
		{
			name:     "replace",
			layers:   pkg,
			opts:     []InstallOpts{WithInstallReplace},
			existing: map[string]string{"bin/hello": "old", "bin/mine": "kept", "bin/sub/mine": "kept"},
			want: []string{"bin/", "bin/dotted -rwx------ dotted", "bin/hello -rwxr-xr-x #!/bin/sh\necho hello\n",
				"bin/mine -rw-r--r-- kept", "bin/sub/", "bin/sub/mine -rw-r--r-- kept"},
		},
		{
			name: "later layers and whiteouts win",
			layers: [][]tarEntry{
				{reg("bin/a", "a1", 0o755), reg("bin/b", "b1", 0o755), reg("bin/c", "c1", 0o755), reg("lib/l", "l1", 0o644)},
				{reg("bin/a", "a2", 0o750), reg("bin/.wh.b", "", 0o644)},
				{reg("lib/.wh..wh..opq", "", 0o644), reg("lib/m", "m3", 0o644)},
			},
			opts: []InstallOpts{WithInstallLibs},
			want: []string{"bin/", "bin/a -rwxr-x--- a2", "bin/c -rwxr-xr-x c1", "lib/", "lib/m -rw-r--r-- m3"},
		},
		{
			name: "whiteout of bin itself",
			layers: [][]tarEntry{
				{reg("bin/a", "a1", 0o755)},
				{reg(".wh.bin", "", 0o644), reg("bin/b", "b2", 0o755)},
			},
			want: []string{"bin/", "bin/b -rwxr-xr-x b2"},
		},
		{
			name: "hardlinks within the install",
			layers: [][]tarEntry{
				{reg("bin/busybox", "bb", 0o755), hard("bin/sh", "bin/busybox"), hard("bin/ls", "/bin/busybox")},
			},
			want: []string{"bin/", "bin/busybox -rwxr-xr-x bb", "bin/ls -rwxr-xr-x bb", "bin/sh -rwxr-xr-x bb"},
		},
		{
			name: "setuid kept as containerd keeps it",
			layers: [][]tarEntry{
				{reg("bin/su", "su", 0o4755)},
			},
			want: []string{"bin/", "bin/su urwxr-xr-x su"},
		},
		{
			name:    "nothing to install",
			layers:  [][]tarEntry{{reg("usr/bin/x", "x", 0o755)}},
			want:    nil,
			wantErr: "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "opt")
			for p, data := range tc.existing {
				if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			img := rawImage(t, ctx, c, "install/"+strings.ReplaceAll(tc.name, " ", "-"), tc.layers...)
			err := c.Install(ctx, img, append(tc.opts, WithInstallPath(root))...)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Install: %v", err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr+root) || !errdefs.IsAlreadyExists(err) {
					t.Fatalf("Install error = %v, want %q… (already exists)", err, tc.wantErr+root)
				}
			}
			if got := tree(t, root); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("install dir:\n got %q\nwant %q", got, tc.want)
			}
			if got := tree(t, base); len(got) == 0 || got[0] != "opt/" {
				t.Errorf("outside the install dir: %q", got)
			}
		})
	}
}

// TestInstallReplaceIsRename checks that --replace puts a new file in
// place rather than writing into the old one: a hardlink to the old file
// keeps the old content, and a symlink at the target is replaced, not
// followed.
func TestInstallReplaceIsRename(t *testing.T) {
	c, _ := newTestDaemon(t)
	ctx := namespaces.WithNamespace(context.Background(), "install")
	base := t.TempDir()
	root := filepath.Join(base, "opt")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(root, "bin", "hello")
	if err := os.WriteFile(old, []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(old, filepath.Join(base, "old-link")); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(base, "victim")
	if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(root, "bin", "tool")); err != nil {
		t.Fatal(err)
	}
	img := rawImage(t, ctx, c, "install/replace", []tarEntry{reg("bin/hello", "new", 0o755), reg("bin/tool", "tool", 0o755)})
	if err := c.Install(ctx, img, WithInstallPath(root)); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("Install without replace = %v, want already exists", err)
	}
	if err := c.Install(ctx, img, WithInstallPath(root), WithInstallReplace); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		old:                             "new",
		filepath.Join(root, "bin/tool"): "tool",
		filepath.Join(base, "old-link"): "old",
		victim:                          "victim",
	} {
		if data, err := os.ReadFile(p); err != nil || string(data) != want {
			t.Errorf("%s = %q, %v; want %q", p, data, err, want)
		}
	}
	if fi, err := os.Lstat(filepath.Join(root, "bin/tool")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("bin/tool: %v %v, want a regular file in place of the symlink", fi, err)
	}
}

// TestInstallHostile installs an image whose layers try to write outside
// the install directory: nothing lands outside it, and only the plain
// files and the links that stay inside are installed.
func TestInstallHostile(t *testing.T) {
	c, _ := newTestDaemon(t)
	ctx := namespaces.WithNamespace(context.Background(), "install")
	base := t.TempDir()
	root := filepath.Join(base, "a", "opt")
	secret := filepath.Join(base, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	absName := "/" + strings.TrimPrefix(filepath.Join(base, "abs"), "/")
	img := rawImage(t, ctx, c, "install/hostile", []tarEntry{
		reg("../escape", "x", 0o755),
		reg("bin/../../escape", "x", 0o755),
		reg("bin/../../../escape", "x", 0o755),
		reg("/bin/abs", "x", 0o755),
		reg(absName, "x", 0o755),
		reg("bin/ok", "ok", 0o755),
		sym("bin/passwd", "/etc/passwd"),
		sym("bin/out", "../../escape"),
		sym("bin/up", ".."),         // DIR itself: inside
		sym("bin/chain", "up/.."),   // up/.. is DIR/.. to the kernel
		sym("bin/libs", "../lib/x"), // inside
		sym("bin/empty", ""),
		reg("bin/passwd/x", "through a symlink", 0o644),
		reg("bin/up/escape", "through a symlink", 0o644),
		hard("bin/shadow", "etc/shadow"),
		hard("bin/secret", "../secret"),
		hard("bin/secret2", "../../../secret"),
		hard("bin/self", "bin/ok"),
		dir("bin/d/"),
		hard("bin/linkdir", "bin/d"), // a directory: no hardlink
		{name: "bin/null", typ: tar.TypeChar, mode: 0o666},
		{name: "bin/fifo", typ: tar.TypeFifo, mode: 0o666},
		reg("bin/.wh...", "", 0o644),   // hides "..": ignored
		reg(".wh..wh..opq", "", 0o644), // the root made opaque: nothing below to hide
	}, []tarEntry{
		// A later layer hides the install dir's parent and links again.
		reg(".wh...", "", 0o644),
		reg("bin/.wh.secret", "", 0o644),
		hard("bin/new", "bin/ok"), // staged by an earlier layer
		hard("bin/gone", "bin/passwd"),
	})
	if err := c.Install(ctx, img, WithInstallPath(root), WithInstallLibs); err != nil {
		t.Fatalf("Install: %v", err)
	}
	want := []string{"bin/", "bin/d/", "bin/libs -> ../lib/x", "bin/new -rwxr-xr-x ok", "bin/ok -rwxr-xr-x ok",
		"bin/self -rwxr-xr-x ok", "bin/up -> .."}
	if got := tree(t, root); !reflect.DeepEqual(got, want) {
		t.Errorf("install dir:\n got %q\nwant %q", got, want)
	}
	// Outside the install dir, everything is as it was.
	wantBase := append(append([]string{"a/", "a/opt/"}, prefixed("a/opt/", want)...), "secret -rw------- secret")
	if got := tree(t, base); !reflect.DeepEqual(got, wantBase) {
		t.Errorf("base dir:\n got %q\nwant %q", got, wantBase)
	}
	if _, err := os.Lstat("/bin/abs"); err == nil {
		t.Error("/bin/abs was written")
	}
	var a, b syscall.Stat_t
	if syscall.Stat(filepath.Join(root, "bin/ok"), &a) != nil || syscall.Stat(filepath.Join(root, "bin/self"), &b) != nil || a.Ino != b.Ino {
		t.Error("bin/self is not a hardlink of bin/ok")
	}
	if a.Nlink != 3 {
		t.Errorf("bin/ok has %d links, want 3 (ok, self, new)", a.Nlink)
	}
}

func prefixed(p string, l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = p + s
	}
	return out
}

func TestSymlinkStaysInside(t *testing.T) {
	for _, tc := range []struct {
		target string
		ok     bool
	}{
		{"busybox", true},
		{"./busybox", true},
		{"../lib/libc.so.6", true},
		{"..", true},
		{"sub/dir/file", true},
		{"", false},
		{"/usr/bin/env", false},
		{"../..", false},
		{"../../etc/passwd", false},
		{"a/../b", false},
		{"up/..", false},
		{".././../x", false},
		{"x\x00", false},
	} {
		if got := symlinkStaysInside(tc.target); got != tc.ok {
			t.Errorf("symlinkStaysInside(%q) = %v, want %v", tc.target, got, tc.ok)
		}
	}
}

// TestInstallImageBuilder installs from an image built and imported like
// any other (gzip layers).
func TestInstallImageBuilder(t *testing.T) {
	c, _ := newTestDaemon(t)
	ctx := namespaces.WithNamespace(context.Background(), "install")
	opts := testimage.Options{Name: "docker.io/library/hello:1", Layers: []testimage.Layer{{Files: []testimage.File{
		testimage.Dir("bin", 0o755),
		testimage.Regular("bin/hello", "hello", 0o755),
		testimage.Dir("lib", 0o755),
		testimage.Regular("lib/libhello.so", "lib", 0o644),
	}}}}
	info, _ := importImage(t, ctx, c, opts)
	root := filepath.Join(t.TempDir(), "opt")
	if err := c.Install(ctx, NewImage(c, info), WithInstallPath(root), WithInstallLibs); err != nil {
		t.Fatal(err)
	}
	want := []string{"bin/", "bin/hello -rwxr-xr-x hello", "lib/", "lib/libhello.so -rw-r--r-- lib"}
	if got := tree(t, root); !reflect.DeepEqual(got, want) {
		t.Errorf("install dir:\n got %q\nwant %q", got, want)
	}
}

// TestInstallPlatform installs from an index: the handle's platform (by
// default this host's) picks the manifest.
func TestInstallPlatform(t *testing.T) {
	c, _ := newTestDaemon(t)
	ctx := namespaces.WithNamespace(context.Background(), "install")
	cs := c.ContentStore()
	other := ocispec.Platform{OS: "linux", Architecture: "s390x"}
	if platforms.Default().Architecture == other.Architecture {
		other.Architecture = "ppc64le"
	}
	mOther := rawManifest(t, ctx, cs, other, []tarEntry{reg("bin/hello", "other", 0o755)})
	mHost := rawManifest(t, ctx, cs, platforms.Default(), []tarEntry{reg("bin/hello", "host", 0o755)})
	idx := writeDoc(t, ctx, cs, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{mOther, mHost},
	}, []ocispec.Descriptor{mOther, mHost})
	img := createImage(t, ctx, c, "install/index", idx)

	root := t.TempDir()
	if err := c.Install(ctx, img, WithInstallPath(root)); err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, root), []string{"bin/", "bin/hello -rwxr-xr-x host"}; !reflect.DeepEqual(got, want) {
		t.Errorf("install dir: got %q, want %q", got, want)
	}
	oimg := NewImageWithPlatform(c, img.Metadata(), platforms.Only(other))
	if err := c.Install(ctx, oimg, WithInstallPath(root), WithInstallReplace); err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, root), []string{"bin/", "bin/hello -rwxr-xr-x other"}; !reflect.DeepEqual(got, want) {
		t.Errorf("install dir for %s: got %q, want %q", platforms.Format(other), got, want)
	}
	none := NewImageWithPlatform(c, img.Metadata(), platforms.Only(ocispec.Platform{OS: "windows", Architecture: "arm"}))
	if err := c.Install(ctx, none, WithInstallPath(root), WithInstallReplace); !errdefs.IsNotFound(err) {
		t.Errorf("Install for a platform the index lacks = %v, want not found", err)
	}
}

// fakeIntrospection answers Plugins with a fixed list.
type fakeIntrospection struct {
	introspectionapi.UnimplementedIntrospectionServer
	plugins []*introspectionapi.Plugin
	filters []string
}

func (f *fakeIntrospection) Plugins(_ context.Context, r *introspectionapi.PluginsRequest) (*introspectionapi.PluginsResponse, error) {
	f.filters = r.Filters
	return &introspectionapi.PluginsResponse{Plugins: f.plugins}, nil
}

// TestInstallPath checks the default install path: what the daemon's opt
// plugin exports, as containerd's client asks for it.
func TestInstallPath(t *testing.T) {
	for _, tc := range []struct {
		name    string
		plugins []*introspectionapi.Plugin
		cfg     InstallConfig
		want    string
		wantErr string
	}{
		{name: "no opt plugin", wantErr: "opt service not enabled"},
		{name: "opt path", want: "/opt/containerd",
			plugins: []*introspectionapi.Plugin{{Type: "io.containerd.internal.v1", Id: "opt", Exports: map[string]string{"path": "/opt/containerd"}}}},
		{name: "opt without path", wantErr: "opt path not exported",
			plugins: []*introspectionapi.Plugin{{Type: "io.containerd.internal.v1", Id: "opt"}}},
		{name: "--path wins", cfg: InstallConfig{Path: "/x"}, want: "/x",
			plugins: []*introspectionapi.Plugin{{Type: "io.containerd.internal.v1", Id: "opt", Exports: map[string]string{"path": "/opt/containerd"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeIntrospection{plugins: tc.plugins}
			c := newFakeClient(t, func(srv *grpc.Server) { introspectionapi.RegisterIntrospectionServer(srv, f) })
			got, err := c.installPath(context.Background(), tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("installPath = %q, %v; want error %q", got, err, tc.wantErr)
				}
			} else if err != nil || got != tc.want {
				t.Fatalf("installPath = %q, %v; want %q", got, err, tc.want)
			}
			if tc.cfg.Path == "" && !reflect.DeepEqual(f.filters, []string{"id==opt"}) {
				t.Errorf("filters = %q", f.filters)
			}
		})
	}
}
