package oci

import (
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	defaultRootfsPath = "rootfs"
	defaultPathEnv    = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	rwm               = "rwm"
)

// defaultSpec is the Linux spec containerd clients generate before any
// option runs; keeping it identical means images behave the same under
// Berth as under containerd.
func defaultSpec(ns, id string) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: defaultRootfsPath},
		Process: &specs.Process{
			Cwd:             "/",
			Env:             []string{defaultPathEnv},
			NoNewPrivileges: true,
			User:            specs.User{UID: 0, GID: 0},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  defaultCaps(),
				Effective: defaultCaps(),
				Permitted: defaultCaps(),
			},
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024},
			},
		},
		Mounts: defaultMounts(),
		Linux: &specs.Linux{
			MaskedPaths:   defaultMaskedPaths(),
			ReadonlyPaths: defaultReadonlyPaths(),
			CgroupsPath:   path.Join("/", ns, id),
			Resources:     &specs.LinuxResources{Devices: defaultDevices()},
			Namespaces:    defaultNamespaces(),
		},
	}
}

// defaultCaps is containerd's (and Docker's) default capability set.
func defaultCaps() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

func defaultNamespaces() []specs.LinuxNamespace {
	return []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.MountNamespace},
		{Type: specs.NetworkNamespace},
	}
}

// defaultMounts are containerd's, /run included: many images expect a
// writable, empty /run at start.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc",
			Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
			Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
			Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue",
			Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs",
			Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
	}
}

// defaultMaskedPaths hide host information and knobs that /proc and /sys
// would otherwise leak into the container.
func defaultMaskedPaths() []string {
	return []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/sys/firmware",
		"/proc/scsi",
	}
}

func defaultReadonlyPaths() []string {
	return []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
}

// defaultDevices denies every device, then allows mknod of any device
// (creating a node is harmless; opening it is what the cgroup checks) and
// read/write of the standard character devices every container needs.
// runc would add the same allow list itself; spelling it out keeps the
// spec self-describing for other runtimes.
func defaultDevices() []specs.LinuxDeviceCgroup {
	c := func(major, minor int64, access string) specs.LinuxDeviceCgroup {
		d := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Access: access}
		if major >= 0 {
			d.Major = &major
		}
		if minor >= 0 {
			d.Minor = &minor
		}
		return d
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: rwm},
		c(-1, -1, "m"),                        // c *:* m
		{Allow: true, Type: "b", Access: "m"}, // b *:* m
		c(1, 3, rwm),                          // /dev/null
		c(1, 5, rwm),                          // /dev/zero
		c(1, 7, rwm),                          // /dev/full
		c(1, 8, rwm),                          // /dev/random
		c(1, 9, rwm),                          // /dev/urandom
		c(5, 0, rwm),                          // /dev/tty
		c(5, 1, rwm),                          // /dev/console
		c(5, 2, rwm),                          // /dev/ptmx
		c(136, -1, rwm),                       // /dev/pts/*
		c(10, 200, rwm),                       // /dev/net/tun
	}
}
