package oci

import (
	"context"
	"fmt"
	"math"
	"path"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cpuPeriod is the CFS period --cpus is expressed against (100ms).
const cpuPeriod uint64 = 100000

// WithMemoryLimit caps the container's memory at limit bytes.
func WithMemoryLimit(limit int64) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if limit <= 0 {
			return fmt.Errorf("memory limit %d must be positive: %w", limit, errdefs.ErrInvalidArgument)
		}
		ensureResources(s)
		if s.Linux.Resources.Memory == nil {
			s.Linux.Resources.Memory = &specs.LinuxMemory{}
		}
		s.Linux.Resources.Memory.Limit = &limit
		return nil
	}
}

// WithCPUs limits the container to cpus CPUs' worth of time: a CFS quota of
// cpus*100000us per 100000us period, like `ctr run --cpus`.
func WithCPUs(cpus float64) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		quota := cpus * float64(cpuPeriod)
		// The kernel refuses quotas under 1ms.
		if math.IsNaN(cpus) || math.IsInf(cpus, 0) || quota < 1000 || quota > math.MaxInt64/2 {
			return fmt.Errorf("cpus %v must be at least 0.01: %w", cpus, errdefs.ErrInvalidArgument)
		}
		q, p := int64(quota), cpuPeriod
		ensureResources(s)
		if s.Linux.Resources.CPU == nil {
			s.Linux.Resources.CPU = &specs.LinuxCPU{}
		}
		s.Linux.Resources.CPU.Quota = &q
		s.Linux.Resources.CPU.Period = &p
		return nil
	}
}

// WithCPUShares sets the container's relative CPU weight (1024 is the
// default weight of a cgroup).
func WithCPUShares(shares uint64) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		// cgroup v1 clamps to [2, 262144]; refuse rather than silently clamp.
		if shares < 2 || shares > 262144 {
			return fmt.Errorf("cpu shares %d must be within [2, 262144]: %w", shares, errdefs.ErrInvalidArgument)
		}
		ensureResources(s)
		if s.Linux.Resources.CPU == nil {
			s.Linux.Resources.CPU = &specs.LinuxCPU{}
		}
		s.Linux.Resources.CPU.Shares = &shares
		return nil
	}
}

// WithPidsLimit caps the number of processes in the container.
func WithPidsLimit(limit int64) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if limit <= 0 {
			return fmt.Errorf("pids limit %d must be positive: %w", limit, errdefs.ErrInvalidArgument)
		}
		ensureResources(s)
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
		return nil
	}
}

// WithCgroup sets the cgroups path: a cgroupfs path (absolute, or
// relative to the runtime's own cgroup), runc's systemd form
// "slice:prefix:name", or "" to leave the choice to the runtime.
func WithCgroup(p string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if err := validateCgroupPath(p); err != nil {
			return err
		}
		ensureLinux(s)
		s.Linux.CgroupsPath = p
		return nil
	}
}

func validateCgroupPath(p string) error {
	bad := strings.ContainsRune(p, 0)
	// In the systemd form the parts are unit names, which cannot climb out
	// of anything; in a cgroupfs path a ".." would put the container's
	// cgroup outside the hierarchy the daemon manages.
	systemd := strings.Count(p, ":") == 2 && !strings.Contains(p, "/")
	if !systemd {
		for _, el := range strings.Split(p, "/") {
			if el == ".." {
				bad = true
			}
		}
	}
	if bad {
		return fmt.Errorf("cgroups path %q must have no \"..\" or NUL: %w", p, errdefs.ErrInvalidArgument)
	}
	return nil
}

// WithNamespacedCgroup sets the cgroups path to /<namespace>/<id>, the
// default, for specs that came from elsewhere (WithSpecFromFile).
func WithNamespacedCgroup() SpecOpts {
	return func(_ context.Context, c *ContainerInfo, s *specs.Spec) error {
		if c.Namespace == "" || c.ID == "" {
			return fmt.Errorf("namespaced cgroup needs the container's namespace and id: %w", errdefs.ErrInvalidArgument)
		}
		ensureLinux(s)
		s.Linux.CgroupsPath = path.Join("/", c.Namespace, c.ID)
		return nil
	}
}
