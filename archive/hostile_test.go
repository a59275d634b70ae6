package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-containers/berth/archive/compression"
	"github.com/berth-containers/berth/pkg/errdefs"
)

// hostileCase is a sequence of layers applied onto one root. sentinel is
// the absolute path of the sentinel directory beside the root, so layers
// can aim at it both by absolute path and by "..".
type hostileCase struct {
	name string
	// layers builds the layers; sentinel is the absolute sentinel path.
	layers func(t testing.TB, sentinel string) [][]byte
	// wantErr, when set, is a substring the error of the last layer must
	// contain; when empty the layers must apply (landing inside root).
	wantErr string
	// check inspects the root after a successful apply.
	check func(t *testing.T, root, sentinel string)
}

func one(entries ...entry) func(testing.TB, string) [][]byte {
	return func(t testing.TB, _ string) [][]byte { return [][]byte{mkTar(t, entries...)} }
}

var hostileCases = []hostileCase{
	{name: "dotdot file", layers: one(fileE("../sentinel/evil", "x")), wantErr: `entry "../sentinel/evil": path escapes target: invalid argument`},
	{name: "dotdot overwrite", layers: one(fileE("../sentinel/file", "x")), wantErr: "path escapes target"},
	{name: "dotdot inside name", layers: one(fileE("a/../../sentinel/evil", "x")), wantErr: "path escapes target"},
	{name: "dotdot deep", layers: one(fileE("../../../../../../../../sentinel/evil", "x")), wantErr: "path escapes target"},
	{name: "dotdot directory", layers: one(dirE("../sentinel/newdir/", 0o755)), wantErr: "path escapes target"},
	{name: "dotdot whiteout", layers: one(whE("../sentinel/.wh.file")), wantErr: "path escapes target"},
	{name: "dotdot opaque", layers: one(whE("../sentinel/.wh..wh..opq")), wantErr: "path escapes target"},
	{name: "dotdot symlink name", layers: one(symE("../sentinel/l", "/")), wantErr: "path escapes target"},
	{name: "dotdot hardlink name", layers: one(fileE("a", "a"), linkE("../sentinel/h", "a")), wantErr: "path escapes target"},
	{
		name: "absolute path lands inside",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{mkTar(t, fileE(sentinel+"/evil", "x"), fileE(sentinel+"/file", "x"))}
		},
		check: func(t *testing.T, root, sentinel string) {
			if readFile(t, filepath.Join(root, sentinel, "evil")) != "x" {
				t.Error("absolute entry not placed under root")
			}
		},
	},
	{
		name: "symlink to / then write through it",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{mkTar(t, symE("l", "/"), fileE("l"+sentinel+"/evil", "x"), fileE("l"+sentinel+"/file", "x"))}
		},
		check: func(t *testing.T, root, sentinel string) {
			if readFile(t, filepath.Join(root, sentinel, "file")) != "x" || !exists(filepath.Join(root, sentinel, "evil")) {
				t.Error("writes through the / symlink did not land in root")
			}
		},
	},
	{
		name: "symlink to ../../ then write through it",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{mkTar(t, symE("up", "../../../../../../../../"), fileE("up"+sentinel+"/evil", "x"),
				symE("sib", "../sentinel"), fileE("sib/evil", "x"), fileE("sib/file", "x"), dirE("sib/dir/", 0o777))}
		},
		check: func(t *testing.T, root, _ string) {
			if readFile(t, filepath.Join(root, "sentinel/file")) != "x" {
				t.Error("../sentinel should resolve to root/sentinel")
			}
		},
	},
	{
		name: "symlink to the sentinel by absolute path then write through it",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{mkTar(t, symE("s", sentinel), fileE("s/file", "x"), fileE("s/dir/inner", "x"), symE("s/link", "/"))}
		},
	},
	{
		name: "symlink in an earlier layer pointing outside",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{
				mkTar(t, symE("abs", sentinel), symE("rel", "../sentinel"), symE("file", sentinel+"/file"), dirE("d/", 0o755), symE("d/up", "../../..")),
				mkTar(t, fileE("abs/evil", "x"), fileE("abs/file", "x"), fileE("rel/file", "x"), dirE("rel/dir/", 0o777),
					fileE("d/up/sentinel/file", "x"), fileE("file", "replaced"), linkE("rel/x", "abs/file")),
			}
		},
		check: func(t *testing.T, root, _ string) {
			if readFile(t, filepath.Join(root, "file")) != "replaced" {
				t.Error("a file entry over a symlink must replace the symlink")
			}
		},
	},
	{
		name: "symlink chain absolute to relative outside",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{mkTar(t, symE("a", "/b"), symE("b", "c/../../.."+sentinel), dirE("c/", 0o755), fileE("a/file", "x"))}
		},
	},
	{
		name:    "hardlink to /etc/passwd",
		layers:  one(linkE("p", "/etc/passwd")),
		wantErr: `entry "p": hardlink target "/etc/passwd": resolve "etc": no such file or directory`,
	},
	{name: "hardlink to ../outside", layers: one(linkE("h", "../sentinel/file")), wantErr: `hardlink target "../sentinel/file": path escapes target`},
	{
		name: "hardlink through a symlink pointing outside",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{mkTar(t, symE("s", sentinel), symE("r", "../sentinel"), linkE("h", "s/file"))}
		},
		wantErr: `hardlink target "s/file"`,
	},
	{
		name: "hardlink to a symlink pointing outside then write to it",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{mkTar(t, symE("s", sentinel+"/file"), linkE("h", "s"), fileE("h", "x"), fileE("s", "y"))}
		},
	},
	{
		name: "whiteout through a symlink",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{
				mkTar(t, symE("link", sentinel), symE("rel", "../sentinel"), symE("dot", "..")),
				mkTar(t, whE("link/.wh.file"), whE("link/.wh.dir"), whE("rel/.wh.x"), whE("dot/sentinel/.wh.file"), whE("link/.wh..wh..opq"), whE("rel/.wh..wh..opq")),
			}
		},
	},
	{
		name: "whiteout of a symlink removes the link, not its target",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{mkTar(t, symE("link", sentinel)), mkTar(t, whE(".wh.link"))}
		},
		check: func(t *testing.T, root, _ string) {
			if exists(filepath.Join(root, "link")) {
				t.Error("link not removed")
			}
		},
	},
	{
		name: "directory replaced by a symlink then a file under it",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{
				mkTar(t, dirE("d/", 0o755), fileE("d/a", "a"), symE("d", sentinel), fileE("d/evil", "x"), dirE("d/dir/", 0o777)),
				mkTar(t, dirE("e/", 0o755)),
				mkTar(t, symE("e", "../sentinel"), fileE("e/file", "x"), fileE("e/evil", "x")),
			}
		},
	},
	{
		name: "overlay mode through symlinks",
		layers: func(t testing.TB, sentinel string) [][]byte {
			return [][]byte{
				mkTar(t, symE("link", sentinel), symE("rel", "../sentinel")),
				mkTar(t, whE("link/.wh.file"), whE("rel/.wh.x"), whE("link/.wh..wh..opq"), whE("rel/dir/.wh..wh..opq")),
			}
		},
	},
	{name: "symlink loop", layers: one(symE("a", "b"), symE("b", "a"), fileE("a/x", "x")), wantErr: "too many symlinks"},
	{name: "self loop", layers: one(symE("a", "a/x"), fileE("a/y", "x")), wantErr: "too many symlinks"},
	{name: "very long component", layers: one(fileE(strings.Repeat("a", 300), "x")), wantErr: "file name too long"},
	{name: "very long name", layers: one(fileE(strings.Repeat("a/", 3000)+"x", "x")), wantErr: "longer than 4096"},
	{name: "very long hardlink target", layers: one(linkE("x", strings.Repeat("a/", 3000)+"x")), wantErr: "longer than 4096"},
	{name: "sparse bomb", layers: func(t testing.TB, _ string) [][]byte { return [][]byte{sparseTar(t, "f", 1<<62)} }, wantErr: "sparse files expand"},
	{name: "very long symlink target", layers: one(symE("x", strings.Repeat("../", 2000))), wantErr: "file name too long"},
}

func TestApplyHostile(t *testing.T) {
	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			layers := tc.layers(t, s.sentinel)
			var opts []ApplyOpt
			if strings.HasPrefix(tc.name, "overlay mode") {
				requireRoot(t)
				opts = append(opts, WithOverlayWhiteouts())
			}
			var err error
			for i, l := range layers {
				if err = apply(t, s.root, l, opts...); err != nil {
					if i != len(layers)-1 {
						t.Fatalf("layer %d: %v", i, err)
					}
				}
			}
			s.check(t)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if err == nil && tc.check != nil {
				tc.check(t, s.root, s.sentinel)
			}
		})
	}
}

// bomb returns a gzip stream of a tar holding 1 GiB of zeros in 16 files:
// about a megabyte that decompresses a thousandfold.
var bomb = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	zw, _ := compression.CompressStream(&buf, compression.Gzip)
	tw := tar.NewWriter(zw)
	zeros := make([]byte, 1<<20)
	for i := range 16 {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zero" + string(rune('a'+i)), Mode: 0o644, Size: 64 << 20})
		for range 64 {
			tw.Write(zeros)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
})

func TestApplyGzipBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 1 GiB")
	}
	s := newSandbox(t)
	z := bomb()
	if len(z) > 4<<20 {
		t.Fatalf("bomb is %d bytes compressed", len(z))
	}
	r, err := compression.DecompressStream(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const limit = 100 << 20
	n, err := Apply(context.Background(), s.root, r, WithMaxSize(limit))
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "exceed the layer size limit") {
		t.Fatalf("err = %v, want the size limit", err)
	}
	if n > limit {
		t.Errorf("read %d bytes past the %d limit", n, limit)
	}
	var total int64
	filepath.Walk(s.root, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
		return nil
	})
	if total > limit {
		t.Errorf("wrote %d bytes past the %d limit", total, limit)
	}
	s.check(t)
}

// TestApplyLyingSize checks a header whose size exceeds the data fails
// cleanly instead of writing garbage.
func TestApplyLyingSize(t *testing.T) {
	layer := mkTar(t, fileE("a", strings.Repeat("a", 1000)))
	_, err := Apply(context.Background(), t.TempDir(), io.LimitReader(bytes.NewReader(layer), 900))
	if err == nil {
		t.Fatal("truncated data applied")
	}
}
