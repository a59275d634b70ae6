package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

func TestWithSpecFromFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"ociVersion":"1.0.2","process":{"args":["sleep","1"],"cwd":"/"},"root":{"path":"rootfs"},"unknownField":1}`)
	s := genSpec(t, WithSpecFromFile(good), WithEnv([]string{"A=1"}), WithNamespacedCgroup())
	if s.Version != "1.0.2" || len(s.Process.Args) != 2 || s.Process.Env[0] != "A=1" {
		t.Fatalf("spec %+v process %+v", s, s.Process)
	}
	if len(s.Mounts) != 0 || s.Linux.CgroupsPath != "/testns/c1" {
		t.Fatalf("file spec was merged with defaults: mounts %v linux %+v", s.Mounts, s.Linux)
	}

	for _, tc := range []struct {
		name, content string
		kind          func(error) bool
	}{
		{"no version", `{"process":{"cwd":"/"}}`, errdefs.IsInvalidArgument},
		{"version 2", `{"ociVersion":"2.0.0","process":{"cwd":"/"}}`, errdefs.IsInvalidArgument},
		{"no process", `{"ociVersion":"1.1.0"}`, errdefs.IsInvalidArgument},
		{"not json", `ociVersion: 1.0`, errdefs.IsInvalidArgument},
		{"trailing", `{"ociVersion":"1.1.0","process":{}} {}`, errdefs.IsInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(tc.name+".json", tc.content)
			if _, err := GenerateSpec(nsCtx(), &ContainerInfo{ID: "c1"}, WithSpecFromFile(p)); !tc.kind(err) {
				t.Fatalf("err %v, wrong kind", err)
			}
		})
	}
	if _, err := GenerateSpec(nsCtx(), &ContainerInfo{ID: "c1"}, WithSpecFromFile(filepath.Join(dir, "nope"))); !errdefs.IsNotFound(err) {
		t.Fatalf("missing file: %v", err)
	}

	// A generated spec loads back unchanged.
	b, err := json.Marshal(genSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateSpec(nsCtx(), &ContainerInfo{ID: "c1"}, WithSpecFromBytes(b)); err != nil {
		t.Fatal(err)
	}
}
