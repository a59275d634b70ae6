package oci

import (
	"context"
	"path"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithImageConfig applies an image's config the way containerd clients do:
// its Env merged over the current environment by key, Entrypoint+Cmd as the
// command line (when either is set), WorkingDir (default "/") and User,
// whose names are resolved through ContainerInfo.Rootfs. Without a User the
// current uid/gid stay and only the supplementary groups are filled in.
func WithImageConfig(cfg ocispec.ImageConfig) SpecOpts {
	return func(ctx context.Context, c *ContainerInfo, s *specs.Spec) error {
		ensureProcess(s)
		s.Process.Env = mergeEnv(s.Process.Env, cfg.Env)
		if len(cfg.Entrypoint) > 0 || len(cfg.Cmd) > 0 {
			args := append([]string(nil), cfg.Entrypoint...)
			s.Process.Args = append(args, cfg.Cmd...)
		}
		// Builders write absolute working dirs; anything else is taken as
		// relative to the root rather than rejected.
		s.Process.Cwd = path.Join("/", cfg.WorkingDir)
		if cfg.User != "" {
			return WithUser(cfg.User)(ctx, c, s)
		}
		cur := s.Process.User
		return setUser(ctx, c, s, userRef{uid: cur.UID, uidNumeric: true, hasGroup: true, gid: cur.GID, gidNumeric: true})
	}
}

// WithImageConfigAndRootfs is WithImageConfig with user and group names
// resolved in rootfsDir, for callers that already have the container's root
// filesystem on disk.
func WithImageConfigAndRootfs(cfg ocispec.ImageConfig, rootfsDir string) SpecOpts {
	return func(ctx context.Context, c *ContainerInfo, s *specs.Spec) error {
		ci := ContainerInfo{}
		if c != nil {
			ci = *c
		}
		ci.Rootfs = RootfsDir(rootfsDir)
		return WithImageConfig(cfg)(ctx, &ci, s)
	}
}
