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
