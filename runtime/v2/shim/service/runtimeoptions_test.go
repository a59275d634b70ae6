package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/berth-containers/berth/api/runtime/runc/options"
	runtimeoptions "github.com/berth-containers/berth/api/runtime/runtimeoptions/v1"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/typeurl"
)

func TestDecodeRuntimeConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.toml", "BinaryName = \"/usr/local/bin/crun\"\nSystemdCgroup = true\nroot = \"/run/x\"\nio_uid = 1000\nNoPivotRoot = true\n")
	big := write("big.toml", "# "+strings.Repeat("x", maxConfigSize)+"\n")
	for _, tc := range []struct {
		name    string
		ro      *runtimeoptions.Options
		want    *options.Options
		wantErr string
	}{
		{name: "path", ro: &runtimeoptions.Options{ConfigPath: good},
			want: &options.Options{BinaryName: "/usr/local/bin/crun", SystemdCgroup: true, Root: "/run/x", IoUid: 1000, NoPivotRoot: true}},
		{name: "body wins", ro: &runtimeoptions.Options{ConfigPath: good, ConfigBody: []byte(`shim_cgroup = "/berth-shims"`)},
			want: &options.Options{ShimCgroup: "/berth-shims"}},
		{name: "runc type url", ro: &runtimeoptions.Options{TypeUrl: "containerd.runc.v1.Options", ConfigBody: []byte("NoNewKeyring = true")},
			want: &options.Options{NoNewKeyring: true}},
		{name: "empty", ro: &runtimeoptions.Options{}, want: &options.Options{}},
		{name: "other type url", ro: &runtimeoptions.Options{TypeUrl: "io.containerd.kata.v2.Options", ConfigPath: good}, wantErr: "only containerd.runc.v1.Options"},
		{name: "relative path", ro: &runtimeoptions.Options{ConfigPath: "good.toml"}, wantErr: "not absolute"},
		{name: "missing file", ro: &runtimeoptions.Options{ConfigPath: filepath.Join(dir, "none.toml")}, wantErr: "no such file"},
		{name: "directory", ro: &runtimeoptions.Options{ConfigPath: dir}, wantErr: "not a regular file"},
		{name: "too big", ro: &runtimeoptions.Options{ConfigPath: big}, wantErr: "more than"},
		{name: "unknown key", ro: &runtimeoptions.Options{ConfigBody: []byte("SystemdCgroups = true")}, wantErr: `unknown runc option "SystemdCgroups"`},
		{name: "wrong type", ro: &runtimeoptions.Options{ConfigBody: []byte(`SystemdCgroup = "yes"`)}, wantErr: "want a boolean"},
		{name: "negative id", ro: &runtimeoptions.Options{ConfigBody: []byte("IoGid = -1")}, wantErr: "want an id"},
		{name: "relative root", ro: &runtimeoptions.Options{ConfigBody: []byte(`Root = "runc"`)}, wantErr: "not absolute"},
		{name: "bad toml", ro: &runtimeoptions.Options{ConfigBody: []byte("BinaryName = ")}, wantErr: "runtime config config_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := typeurl.MarshalAny(tc.ro)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeOptions(a)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if tc.name != "missing file" && !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzParseRuncOptionsTOML: any file either decodes or is refused as
// invalid, never panics, and a decoded root is absolute.
func FuzzParseRuncOptionsTOML(f *testing.F) {
	for _, s := range []string{"BinaryName = \"runc\"\nSystemdCgroup = true\n", "io_uid = 1000", "[x]\ny=1", "Root = \"rel\"", "IoGid = 99999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		opts, err := parseRuncOptionsTOML(b)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error not InvalidArgument: %v", err)
			}
			return
		}
		if r := opts.GetRoot(); r != "" && !filepath.IsAbs(r) {
			t.Fatalf("relative root %q accepted", r)
		}
	})
}

func TestRuncRoot(t *testing.T) {
	for bundle, want := range map[string]string{
		"/run/berth/io.containerd.runtime.v2.task/default/web":     "/run/berth/runc",
		"/run/bt-1/io.containerd.runtime.v2.task/ns/c1/":           "/run/bt-1/runc",
		"/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc": "/run/containerd/runc",
		"/tmp/somewhere/bundle":                                    DefaultRuncRoot,
		"relative":                                                 DefaultRuncRoot,
	} {
		if got := runcRoot(bundle); got != want {
			t.Errorf("runcRoot(%q) = %q, want %q", bundle, got, want)
		}
	}
	if r := NewRunc("ns", "/run/x/io.containerd.runtime.v2.task/ns/c", &options.Options{Root: "/custom"}); r.Root != "/custom/ns" {
		t.Errorf("configured root: %q", r.Root)
	}
	if r := NewRunc("ns", "/run/x/io.containerd.runtime.v2.task/ns/c", &options.Options{}); r.Root != "/run/x/runc/ns" {
		t.Errorf("derived root: %q", r.Root)
	}
}
