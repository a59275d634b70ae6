package v2

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

func TestResolveBinary(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"containerd-shim-foo-v2", "myshim"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	m := &TaskManager{cfg: ManagerConfig{Runtimes: map[string]RuntimeConfig{
		"io.containerd.mapped.v1": {Binary: "myshim"},
		"io.containerd.abs.v1":    {Binary: filepath.Join(dir, "myshim")},
		"io.containerd.gone.v1":   {Binary: "/nonexistent/shim"},
	}}}
	for _, tc := range []struct {
		runtime string
		want    string
		kind    func(error) bool
	}{
		{"io.containerd.foo.v2", filepath.Join(dir, "containerd-shim-foo-v2"), nil},
		{"io.containerd.mapped.v1", filepath.Join(dir, "myshim"), nil},
		{"io.containerd.abs.v1", filepath.Join(dir, "myshim"), nil},
		{"io.containerd.gone.v1", "", errdefs.IsNotFound},
		{"io.containerd.missing.v2", "", errdefs.IsNotFound},
		{"runc", "", errdefs.IsInvalidArgument},
		{"../../bin/sh", "", errdefs.IsInvalidArgument},
		{"", "", errdefs.IsInvalidArgument},
	} {
		got, err := m.resolveBinary(tc.runtime)
		if tc.kind != nil {
			if err == nil || !tc.kind(err) {
				t.Errorf("%q: err %v", tc.runtime, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.runtime, got, err, tc.want)
		}
	}
}

func TestParseStartOutput(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///run/berth/s/abc\n":                                   "unix:///run/berth/s/abc",
		`{"version":2,"address":"unix:///x.sock","protocol":"ttrpc"}`: "unix:///x.sock",
		`{"version":2`: "",
		"":             "",
	} {
		if got := parseStartOutput([]byte(in)); got != want {
			t.Errorf("%q: got %q want %q", in, got, want)
		}
	}
}

func TestBundlePathRefusesEscapes(t *testing.T) {
	state := t.TempDir()
	for _, tc := range [][2]string{{"default", "../x"}, {"..", "x"}, {"default", "a/b"}, {"", "x"}, {"default", ""}} {
		if _, err := bundlePath(state, tc[0], tc[1]); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%v: %v", tc, err)
		}
	}
	b, err := newBundle(context.Background(), state, "default", "web", []byte(`{"ociVersion":"1.0.2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newBundle(context.Background(), state, "default", "web", nil); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second bundle: %v", err)
	}
	if _, err := os.Stat(filepath.Join(b.Path, "config.json")); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.Path); !os.IsNotExist(err) {
		t.Fatalf("bundle left: %v", err)
	}
}
