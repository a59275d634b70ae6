package oci

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithMounts adds mounts. A mount whose destination matches an existing one
// replaces it in place (so "-v tmpfs:/dev/shm" overrides the default shm
// rather than stacking on top of it); the others are appended in order.
func WithMounts(mounts []specs.Mount) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		for _, m := range mounts {
			if !path.IsAbs(m.Destination) || strings.ContainsRune(m.Destination, 0) {
				return fmt.Errorf("mount destination %q must be an absolute path: %w", m.Destination, errdefs.ErrInvalidArgument)
			}
			m.Destination = path.Clean(m.Destination)
			m.Options = append([]string(nil), m.Options...)
			replaced := false
			for i := range s.Mounts {
				if path.Clean(s.Mounts[i].Destination) == m.Destination {
					s.Mounts[i] = m
					replaced = true
					break
				}
			}
			if !replaced {
				s.Mounts = append(s.Mounts, m)
			}
		}
		return nil
	}
}

// WithHostHostsFile bind-mounts the host's /etc/hosts read-only.
func WithHostHostsFile(ctx context.Context, c *ContainerInfo, s *specs.Spec) error {
	return withHostFile("/etc/hosts")(ctx, c, s)
}

// WithHostResolvconf bind-mounts the host's /etc/resolv.conf read-only.
func WithHostResolvconf(ctx context.Context, c *ContainerInfo, s *specs.Spec) error {
	return withHostFile("/etc/resolv.conf")(ctx, c, s)
}

func withHostFile(p string) SpecOpts {
	return WithMounts([]specs.Mount{{
		Destination: p,
		Type:        "bind",
		Source:      p,
		Options:     []string{"rbind", "ro"},
	}})
}

// WithRootFSReadonly makes the container's root filesystem read-only.
func WithRootFSReadonly() SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if s.Root == nil {
			s.Root = &specs.Root{Path: defaultRootfsPath}
		}
		s.Root.Readonly = true
		return nil
	}
}

// WithRootFSPath sets the root path, relative to the bundle or absolute.
func WithRootFSPath(p string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if p == "" || strings.ContainsRune(p, 0) {
			return fmt.Errorf("root path %q: %w", p, errdefs.ErrInvalidArgument)
		}
		if s.Root == nil {
			s.Root = &specs.Root{}
		}
		s.Root.Path = p
		return nil
	}
}

// WithMaskedPaths replaces the list of paths hidden from the container.
func WithMaskedPaths(paths []string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		ensureLinux(s)
		s.Linux.MaskedPaths = append([]string(nil), paths...)
		return nil
	}
}

// WithReadonlyPaths replaces the list of paths made read-only.
func WithReadonlyPaths(paths []string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		ensureLinux(s)
		s.Linux.ReadonlyPaths = append([]string(nil), paths...)
		return nil
	}
}

// setReadonly switches the mounts at dest between "ro" and "rw".
func setReadonly(s *specs.Spec, dest string, ro bool) {
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if path.Clean(m.Destination) != dest {
			continue
		}
		opts := m.Options[:0:0]
		for _, o := range m.Options {
			if o != "ro" && o != "rw" {
				opts = append(opts, o)
			}
		}
		if ro {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		m.Options = opts
	}
}
