package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-containers/berth/content/local"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/images/archive"
	"github.com/berth-containers/berth/images/testimage"
	"github.com/berth-containers/berth/pkg/platforms"
)

func TestRun(t *testing.T) {
	if _, err := os.Stat(testimage.DefaultBusybox); err != nil {
		t.Skipf("no busybox: %v", err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		args   []string
		name   string
		layers int
	}{
		{[]string{"--layers", "3"}, "docker.io/library/busybox:latest", 3},
		{[]string{"--format", "docker", "--name", "example.com/bb:1"}, "example.com/bb:1", 1},
		{[]string{"--size-mb", "2", "--random-layers", "2", "--uncompressed"}, "docker.io/library/busybox:latest", 3},
	} {
		out := filepath.Join(dir, "img.tar")
		var stderr bytes.Buffer
		if err := run(append([]string{"-o", out}, tc.args...), nil, &stderr); err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, stderr.String())
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		s, err := local.NewStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		recs, err := archive.Import(ctx, s, f)
		f.Close()
		if err != nil {
			t.Fatalf("%v: import: %v", tc.args, err)
		}
		if len(recs) != 1 || recs[0].Name != tc.name {
			t.Fatalf("%v: records %+v", tc.args, recs)
		}
		m, err := images.Manifest(ctx, s, recs[0].Target, platforms.DefaultMatcher())
		if err != nil || len(m.Layers) != tc.layers {
			t.Fatalf("%v: manifest %v, %d layers", tc.args, err, len(m.Layers))
		}
	}
	if err := run([]string{"--layers", "1"}, nil, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "-o") {
		t.Fatalf("missing -o: %v", err)
	}
	if err := run([]string{"-o", filepath.Join(dir, "x"), "--format", "zip"}, nil, &bytes.Buffer{}); err == nil {
		t.Fatal("bad format accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Fatal("failed run left a file")
	}
}
