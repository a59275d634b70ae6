package oci

import (
	"context"
	"reflect"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestWithImageConfig(t *testing.T) {
	root := fakeRootfs(t, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
	for _, tc := range []struct {
		name     string
		cfg      ocispec.ImageConfig
		pre      []SpecOpts
		args     []string
		env      []string
		cwd      string
		user     specs.User
		wantKind func(error) bool
	}{
		{
			name: "full",
			cfg: ocispec.ImageConfig{
				Env:        []string{"PATH=/opt/bin:/usr/bin", "LANG=C.UTF-8"},
				Entrypoint: []string{"/entry.sh"},
				Cmd:        []string{"serve", "--port=80"},
				WorkingDir: "/app",
				User:       "alice",
			},
			args: []string{"/entry.sh", "serve", "--port=80"},
			env:  []string{"PATH=/opt/bin:/usr/bin", "LANG=C.UTF-8"},
			cwd:  "/app",
			user: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 100, 10, 29}},
		},
		{
			name: "cmd only, no user, no workdir",
			cfg:  ocispec.ImageConfig{Cmd: []string{"sh"}},
			args: []string{"sh"},
			env:  []string{defaultPathEnv},
			cwd:  "/",
			user: specs.User{AdditionalGids: []uint32{0}},
		},
		{
			name: "empty config keeps earlier args and env",
			pre:  []SpecOpts{WithProcessArgs("true"), WithEnv([]string{"A=1"})},
			args: []string{"true"},
			env:  []string{defaultPathEnv, "A=1"},
			cwd:  "/",
			user: specs.User{AdditionalGids: []uint32{0}},
		},
		{
			name: "relative workdir, uid:gid user",
			cfg:  ocispec.ImageConfig{WorkingDir: "srv", User: "1001:1001", Entrypoint: []string{"x"}},
			args: []string{"x"},
			env:  []string{defaultPathEnv},
			cwd:  "/srv",
			user: specs.User{UID: 1001, GID: 1001, AdditionalGids: []uint32{1001, 10, 29}},
		},
		{
			name:     "unknown user",
			cfg:      ocispec.ImageConfig{User: "nobody"},
			wantKind: errdefs.IsNotFound,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append(tc.pre, WithImageConfigAndRootfs(tc.cfg, root))
			s, err := GenerateSpec(nsCtx(), &ContainerInfo{ID: "c1"}, opts...)
			if tc.wantKind != nil {
				if !tc.wantKind(err) {
					t.Fatalf("err %v, wrong kind", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := s.Process
			if !reflect.DeepEqual(p.Args, tc.args) || !reflect.DeepEqual(p.Env, tc.env) || p.Cwd != tc.cwd {
				t.Errorf("args %v env %v cwd %q", p.Args, p.Env, p.Cwd)
			}
			if !reflect.DeepEqual(p.User, tc.user) {
				t.Errorf("user %+v, want %+v", p.User, tc.user)
			}
		})
	}
}

func TestWithImageConfigUsesContainerRootfs(t *testing.T) {
	root := fakeRootfs(t, map[string]string{"etc/passwd": testPasswd})
	s, err := GenerateSpec(context.Background(), &ContainerInfo{ID: "c1", Namespace: "ns", Rootfs: RootfsDir(root)},
		WithImageConfig(ocispec.ImageConfig{User: "bob"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.User.UID != 1001 || s.Process.User.GID != 100 {
		t.Fatalf("user %+v", s.Process.User)
	}
}
