// Package oci builds OCI runtime specs for containers: a default Linux spec
// that matches what containerd clients produce, and SpecOpts that adjust it
// from an image config and the client's flags.
//
// Options that look inside the container's root filesystem (user and group
// names) do so through ContainerInfo.Rootfs, so the client decides how the
// snapshot is made readable (a temporary mount, an unpacked directory) and
// this package never needs to know about snapshotters or mounts.
package oci

import (
	"context"
	"fmt"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/typeurl"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func init() {
	// The spec travels in Container.Spec and CreateTask as containerd's
	// JSON-in-Any; registering here means any importer of oci can pack it.
	typeurl.Register(specs.Spec{}, typeurl.SpecURL)
}

// ContainerInfo is what SpecOpts may consult about the container the spec
// is for. Only ID is required; Namespace defaults to the context's.
type ContainerInfo struct {
	ID        string
	Namespace string
	// Image is the image reference the container is created from, if any.
	Image string
	// Snapshotter and SnapshotKey name the container's root filesystem
	// snapshot; informational for options, the client owns the snapshot.
	Snapshotter string
	SnapshotKey string
	// Rootfs, when set, makes the container's root filesystem readable for
	// the duration of fn. Options resolving user or group names need it;
	// numeric users work without it.
	Rootfs RootfsFunc
	// Layers, when set, is the same root file system as directories to
	// read in user space without mounting; Rootfs is the fallback for
	// layouts the reader does not handle.
	Layers *RootfsLayers
}

// RootfsFunc calls fn with a host directory holding the container's root
// filesystem, valid only until fn returns (e.g. a temporary mount).
type RootfsFunc func(ctx context.Context, fn func(root string) error) error

// RootfsDir is a RootfsFunc for a root filesystem already present in dir.
func RootfsDir(dir string) RootfsFunc {
	return func(ctx context.Context, fn func(root string) error) error {
		return fn(dir)
	}
}

// SpecOpts adjusts a spec being generated for container c.
type SpecOpts func(ctx context.Context, c *ContainerInfo, s *specs.Spec) error

// GenerateSpec returns the default Linux spec for c with opts applied in
// order. The namespace comes from c.Namespace, else from ctx.
func GenerateSpec(ctx context.Context, c *ContainerInfo, opts ...SpecOpts) (*specs.Spec, error) {
	if c == nil {
		return nil, fmt.Errorf("generate spec: no container info: %w", errdefs.ErrInvalidArgument)
	}
	// The ID and namespace become cgroup path elements, so they must be
	// identifiers even though the containers service checks them again.
	if err := identifiers.Validate(c.ID); err != nil {
		return nil, fmt.Errorf("generate spec: container id: %w", err)
	}
	ci := *c // options see the resolved namespace; the caller's copy is untouched
	c = &ci
	if c.Namespace == "" {
		ns, err := namespaces.NamespaceRequired(ctx)
		if err != nil {
			return nil, fmt.Errorf("generate spec for %q: %w", c.ID, err)
		}
		c.Namespace = ns
	} else if err := identifiers.Validate(c.Namespace); err != nil {
		return nil, fmt.Errorf("generate spec for %q: namespace: %w", c.ID, err)
	}
	s := defaultSpec(c.Namespace, c.ID)
	if err := ApplyOpts(ctx, c, s, opts...); err != nil {
		return nil, err
	}
	return s, nil
}

// ApplyOpts applies opts to an existing spec, stopping at the first error.
func ApplyOpts(ctx context.Context, c *ContainerInfo, s *specs.Spec, opts ...SpecOpts) error {
	if c == nil {
		c = &ContainerInfo{}
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(ctx, c, s); err != nil {
			return err
		}
	}
	return nil
}

// Compose bundles several options into one, applied in order.
func Compose(opts ...SpecOpts) SpecOpts {
	return func(ctx context.Context, c *ContainerInfo, s *specs.Spec) error {
		return ApplyOpts(ctx, c, s, opts...)
	}
}

// The helpers below let options work on specs loaded from a file, where
// any section may be absent.

func ensureProcess(s *specs.Spec) {
	if s.Process == nil {
		s.Process = &specs.Process{Cwd: "/"}
	}
}

func ensureLinux(s *specs.Spec) {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
}

func ensureResources(s *specs.Spec) {
	ensureLinux(s)
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
}

func ensureCapabilities(s *specs.Spec) {
	ensureProcess(s)
	if s.Process.Capabilities == nil {
		s.Process.Capabilities = &specs.LinuxCapabilities{}
	}
}
