package oci

import (
	"context"
	"fmt"

	"github.com/berth-containers/berth/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithHostNamespace makes the container share the host's namespace of type
// ns (pid, network, ipc, uts, ...) by leaving it out of the spec. Sharing
// the host network also bind-mounts the host's /etc/hosts and
// /etc/resolv.conf read-only, as `ctr run --net-host` does, so name
// resolution inside matches the network the container now sees.
func WithHostNamespace(ns specs.LinuxNamespaceType) SpecOpts {
	return func(ctx context.Context, c *ContainerInfo, s *specs.Spec) error {
		switch ns {
		case specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace,
			specs.UTSNamespace, specs.MountNamespace, specs.UserNamespace,
			specs.CgroupNamespace, specs.TimeNamespace:
		default:
			return fmt.Errorf("namespace type %q: %w", ns, errdefs.ErrInvalidArgument)
		}
		ensureLinux(s)
		kept := s.Linux.Namespaces[:0]
		for _, n := range s.Linux.Namespaces {
			if n.Type != ns {
				kept = append(kept, n)
			}
		}
		s.Linux.Namespaces = kept
		if ns == specs.NetworkNamespace {
			if err := WithHostHostsFile(ctx, c, s); err != nil {
				return err
			}
			return WithHostResolvconf(ctx, c, s)
		}
		return nil
	}
}

// WithLinuxNamespace adds or replaces a namespace, e.g. joining an existing
// one by path.
func WithLinuxNamespace(ns specs.LinuxNamespace) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		ensureLinux(s)
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == ns.Type {
				s.Linux.Namespaces[i] = ns
				return nil
			}
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, ns)
		return nil
	}
}

// WithUserNamespace runs the container in a new user namespace with
// these uid and gid mappings, added to any the spec has (containerd's
// ctr --uidmap/--gidmap). A user namespace the spec joins by path is
// kept as it is: the mappings are then that namespace's, and giving more
// is an error.
func WithUserNamespace(uidMaps, gidMaps []specs.LinuxIDMapping) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if len(uidMaps) == 0 || len(gidMaps) == 0 {
			return fmt.Errorf("a user namespace needs both uid and gid mappings: %w", errdefs.ErrInvalidArgument)
		}
		ensureLinux(s)
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == specs.UserNamespace && ns.Path != "" {
				return fmt.Errorf("user namespace %s is joined, its mappings are its own: %w", ns.Path, errdefs.ErrInvalidArgument)
			}
		}
		if err := WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UserNamespace})(context.Background(), nil, s); err != nil {
			return err
		}
		s.Linux.UIDMappings = append(s.Linux.UIDMappings, uidMaps...)
		s.Linux.GIDMappings = append(s.Linux.GIDMappings, gidMaps...)
		return nil
	}
}
