package oci

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestResourceOpts(t *testing.T) {
	s := genSpec(t,
		WithMemoryLimit(64<<20),
		WithCPUs(1.5),
		WithCPUShares(512),
		WithPidsLimit(100),
		WithCgroup("/custom/path"),
		WithRootFSReadonly(),
	)
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 {
		t.Errorf("memory %d", *r.Memory.Limit)
	}
	if *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || *r.CPU.Shares != 512 {
		t.Errorf("cpu quota %d period %d shares %d", *r.CPU.Quota, *r.CPU.Period, *r.CPU.Shares)
	}
	if *r.Pids.Limit != 100 {
		t.Errorf("pids %d", *r.Pids.Limit)
	}
	if s.Linux.CgroupsPath != "/custom/path" || !s.Root.Readonly {
		t.Errorf("cgroup %q readonly %v", s.Linux.CgroupsPath, s.Root.Readonly)
	}
	if len(r.Devices) == 0 || r.Devices[0].Allow {
		t.Errorf("resources opts dropped the device rules: %+v", r.Devices)
	}
	for _, p := range []string{"", "system.slice:berth:web", "relative/path"} {
		if err := WithCgroup(p)(nsCtx(), &ContainerInfo{}, s); err != nil {
			t.Errorf("WithCgroup(%q): %v", p, err)
		}
	}
	if err := WithNamespacedCgroup()(nsCtx(), &ContainerInfo{ID: "web", Namespace: "prod"}, s); err != nil || s.Linux.CgroupsPath != "/prod/web" {
		t.Errorf("namespaced cgroup %q err %v", s.Linux.CgroupsPath, err)
	}
}

func TestPrivileged(t *testing.T) {
	// Pretend the kernel knows capabilities up to CAP_AUDIT_READ (37).
	dir := t.TempDir()
	capLastCapFile = filepath.Join(dir, "cap_last_cap")
	defer func() { capLastCapFile = "/proc/sys/kernel/cap_last_cap" }()
	if err := os.WriteFile(capLastCapFile, []byte("37\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	s := genSpec(t, WithDefaultSeccomp(), WithPrivileged)
	c := s.Process.Capabilities
	if len(c.Bounding) != 38 || !contains(c.Bounding, "CAP_SYS_ADMIN") || contains(c.Bounding, "CAP_PERFMON") {
		t.Errorf("bounding %v", c.Bounding)
	}
	if len(c.Effective) != 38 || len(c.Permitted) != 38 {
		t.Errorf("effective %d permitted %d", len(c.Effective), len(c.Permitted))
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil || s.Linux.Seccomp != nil {
		t.Errorf("masked %v readonly %v seccomp %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Linux.Seccomp)
	}
	devs := s.Linux.Resources.Devices
	if len(devs) != 1 || !devs[0].Allow || devs[0].Access != "rwm" {
		t.Errorf("devices %+v", devs)
	}
	for _, m := range s.Mounts {
		if m.Destination == "/sys" && (contains(m.Options, "ro") || !contains(m.Options, "rw")) {
			t.Errorf("/sys options %v", m.Options)
		}
	}
}

func TestCapabilityOpts(t *testing.T) {
	s := genSpec(t,
		WithAddedCapabilities([]string{"net_admin", "CAP_SYS_PTRACE"}),
		WithDroppedCapabilities([]string{"MKNOD", "CAP_NET_RAW"}),
	)
	c := s.Process.Capabilities
	for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted} {
		if !contains(set, "CAP_NET_ADMIN") || !contains(set, "CAP_SYS_PTRACE") || contains(set, "CAP_MKNOD") || contains(set, "CAP_NET_RAW") {
			t.Errorf("caps %v", set)
		}
	}
	s = genSpec(t, WithDroppedCapabilities([]string{"all"}), WithCapabilities([]string{"KILL"}))
	if len(s.Process.Capabilities.Bounding) != 1 || s.Process.Capabilities.Bounding[0] != "CAP_KILL" {
		t.Errorf("caps %v", s.Process.Capabilities.Bounding)
	}
}

func TestHostNamespace(t *testing.T) {
	for _, tc := range []struct {
		ns        specs.LinuxNamespaceType
		hostFiles bool
	}{
		{specs.PIDNamespace, false},
		{specs.IPCNamespace, false},
		{specs.UTSNamespace, false},
		{specs.NetworkNamespace, true},
	} {
		t.Run(string(tc.ns), func(t *testing.T) {
			s := genSpec(t, WithHostNamespace(tc.ns))
			for _, n := range s.Linux.Namespaces {
				if n.Type == tc.ns {
					t.Fatalf("%s namespace still present", tc.ns)
				}
			}
			if len(s.Linux.Namespaces) != 4 {
				t.Fatalf("namespaces %v", s.Linux.Namespaces)
			}
			binds := 0
			for _, m := range s.Mounts {
				if (m.Destination == "/etc/hosts" || m.Destination == "/etc/resolv.conf") &&
					m.Type == "bind" && m.Source == m.Destination && contains(m.Options, "ro") {
					binds++
				}
			}
			if want := map[bool]int{true: 2, false: 0}[tc.hostFiles]; binds != want {
				t.Fatalf("host file binds %d, want %d", binds, want)
			}
		})
	}
	s := genSpec(t, WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/var/run/netns/x"}))
	if n := s.Linux.Namespaces[4]; n.Path != "/var/run/netns/x" || len(s.Linux.Namespaces) != 5 {
		t.Errorf("namespaces %v", s.Linux.Namespaces)
	}
}
