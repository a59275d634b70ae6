package oci

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// knownCaps lists Linux capabilities by number (CAP_CHOWN is 0).
var knownCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// capLastCapFile is a variable so tests can point it elsewhere.
var capLastCapFile = "/proc/sys/kernel/cap_last_cap"

// allCaps returns every capability this kernel knows, so a privileged
// container never asks runc for one the kernel would reject.
func allCaps() []string {
	n := len(knownCaps)
	if b, err := os.ReadFile(capLastCapFile); err == nil {
		if last, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && last >= 0 && last+1 < n {
			n = last + 1
		}
	}
	return append([]string(nil), knownCaps[:n]...)
}

// WithCapabilities sets the bounding, effective and permitted sets to caps
// and clears inheritable and ambient.
func WithCapabilities(caps []string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		norm, err := normalizeCaps(caps)
		if err != nil {
			return err
		}
		ensureCapabilities(s)
		s.Process.Capabilities.Bounding = norm
		s.Process.Capabilities.Effective = append([]string(nil), norm...)
		s.Process.Capabilities.Permitted = append([]string(nil), norm...)
		s.Process.Capabilities.Inheritable = nil
		s.Process.Capabilities.Ambient = nil
		return nil
	}
}

// WithAddedCapabilities adds caps ("NET_ADMIN" or "CAP_NET_ADMIN", or
// "ALL") to the bounding, effective and permitted sets.
func WithAddedCapabilities(caps []string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		norm, err := normalizeCaps(caps)
		if err != nil {
			return err
		}
		ensureCapabilities(s)
		pc := s.Process.Capabilities
		for _, set := range []*[]string{&pc.Bounding, &pc.Effective, &pc.Permitted} {
			for _, c := range norm {
				if !contains(*set, c) {
					*set = append(*set, c)
				}
			}
		}
		return nil
	}
}

// WithDroppedCapabilities removes caps (or "ALL") from every set.
func WithDroppedCapabilities(caps []string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		norm, err := normalizeCaps(caps)
		if err != nil {
			return err
		}
		ensureCapabilities(s)
		pc := s.Process.Capabilities
		for _, set := range []*[]string{&pc.Bounding, &pc.Effective, &pc.Permitted, &pc.Inheritable, &pc.Ambient} {
			kept := (*set)[:0]
			for _, c := range *set {
				if !contains(norm, c) {
					kept = append(kept, c)
				}
			}
			*set = kept
		}
		return nil
	}
}

// normalizeCaps upper-cases names, adds the CAP_ prefix, expands "ALL" and
// rejects names that are not capabilities.
func normalizeCaps(caps []string) ([]string, error) {
	var out []string
	for _, c := range caps {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == "ALL" {
			for _, a := range knownCaps {
				if !contains(out, a) {
					out = append(out, a)
				}
			}
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !contains(knownCaps, c) {
			return nil, fmt.Errorf("unknown capability %q: %w", c, errdefs.ErrInvalidArgument)
		}
		if !contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// WithPrivileged gives the container every capability, every device, a
// writable /sys and no masked or read-only paths, and drops seccomp and
// LSM profiles: the equivalent of `ctr run --privileged` minus host device
// nodes, which this package does not copy.
func WithPrivileged(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
	caps := allCaps()
	ensureCapabilities(s)
	s.Process.Capabilities.Bounding = caps
	s.Process.Capabilities.Effective = append([]string(nil), caps...)
	s.Process.Capabilities.Permitted = append([]string(nil), caps...)
	s.Process.ApparmorProfile = ""
	s.Process.SelinuxLabel = ""
	ensureResources(s)
	s.Linux.MaskedPaths = nil
	s.Linux.ReadonlyPaths = nil
	s.Linux.Seccomp = nil
	s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: rwm}}
	setReadonly(s, "/sys", false)
	return nil
}

// WithAllDevicesAllowed lets the container open any device node.
func WithAllDevicesAllowed(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
	ensureResources(s)
	s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: rwm}}
	return nil
}
