package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestExtraOptsErrors(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, []byte("x"), 0o644)
	badJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(badJSON, []byte("{"), 0o644)
	noAction := filepath.Join(dir, "noaction.json")
	os.WriteFile(noAction, []byte(`{"syscalls":[]}`), 0o644)
	for _, tc := range []struct {
		name    string
		opt     SpecOpts
		invalid bool // errdefs.ErrInvalidArgument expected
	}{
		{"device missing", WithDevices(filepath.Join(dir, "nope"), "", "rwm"), false},
		{"device regular file", WithDevices(regular, "", "rwm"), false},
		{"device bad access", WithDevices("/dev/null", "", "rx"), true},
		{"device empty access", WithDevices("/dev/null", "", ""), true},
		{"device repeated access", WithDevices("/dev/null", "", "rr"), true},
		{"device relative target", WithDevices("/dev/null", "dev/null", "rwm"), true},
		{"quota too small", WithCPUCFS(999, 100000), true},
		{"quota zero", WithCPUCFS(0, 0), true},
		{"period too small", WithCPUCFS(50000, 999), true},
		{"period too big", WithCPUCFS(50000, 1000001), true},
		{"ns type", WithNamespacePath("time", "/proc/1/ns/time"), true},
		{"ns type net", WithNamespacePath("net", "/proc/1/ns/net"), true},
		{"ns relative path", WithNamespacePath(specs.NetworkNamespace, "proc/1/ns/net"), true},
		{"seccomp missing", WithSeccompProfile(filepath.Join(dir, "nope.json")), false},
		{"seccomp bad json", WithSeccompProfile(badJSON), true},
		{"seccomp no action", WithSeccompProfile(noAction), true},
		{"propagation", WithRootfsPropagation("bogus"), true},
		{"propagation empty", WithRootfsPropagation(""), true},
		{"rdt empty", WithRdt(""), true},
		{"rdt dotdot", WithRdt(".."), true},
		{"rdt path", WithRdt("a/b"), true},
		{"rdt newline", WithRdt("a\nb"), true},
		{"apparmor empty", WithApparmorProfile(""), true},
		{"apparmor newline", WithApparmorProfile("p\nchangeprofile x"), true},
		{"apparmor nul", WithApparmorProfile("p\x00"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := genSpec(t)
			err := tc.opt(nsCtx(), &ContainerInfo{}, s)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.invalid != errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error %v: invalid argument %v, want %v", err, !tc.invalid, tc.invalid)
			}
		})
	}
}

func TestWithDevices(t *testing.T) {
	s := genSpec(t, WithDevices("/dev/null", "/dev/mynull", "rw"), WithDevices("/dev/zero", "", "rwm"))
	if len(s.Linux.Devices) != 2 {
		t.Fatalf("devices %+v", s.Linux.Devices)
	}
	null, zero := s.Linux.Devices[0], s.Linux.Devices[1]
	if null.Path != "/dev/mynull" || null.Type != "c" || null.Major != 1 || null.Minor != 3 || null.FileMode == nil || null.UID == nil {
		t.Errorf("null %+v", null)
	}
	if zero.Path != "/dev/zero" || zero.Major != 1 || zero.Minor != 5 {
		t.Errorf("zero %+v", zero)
	}
	rules := s.Linux.Resources.Devices
	last2 := rules[len(rules)-2:]
	if !last2[0].Allow || last2[0].Type != "c" || *last2[0].Major != 1 || *last2[0].Minor != 3 || last2[0].Access != "rw" {
		t.Errorf("null rule %+v", last2[0])
	}
	if *last2[1].Minor != 5 || last2[1].Access != "rwm" {
		t.Errorf("zero rule %+v", last2[1])
	}
	if rules[0].Allow {
		t.Errorf("default deny rule lost: %+v", rules[0])
	}
	// The same path again replaces the device rather than doubling it.
	if err := WithDevices("/dev/zero", "/dev/mynull", "r")(nsCtx(), &ContainerInfo{}, s); err != nil {
		t.Fatal(err)
	}
	if len(s.Linux.Devices) != 2 || s.Linux.Devices[0].Minor != 5 {
		t.Errorf("replaced devices %+v", s.Linux.Devices)
	}
}

func TestWithDevicesDir(t *testing.T) {
	dir := t.TempDir()
	// A tree of nodes: a char device, a FIFO and a file (both skipped),
	// a subfolder with a block device, and pts/ (skipped).
	mk := func(p string, mode uint32, dev int) {
		if err := syscall.Mknod(filepath.Join(dir, p), mode|0o600, dev); err != nil {
			t.Skipf("mknod (needs root): %v", err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.MkdirAll(filepath.Join(dir, "pts"), 0o755)
	mk("null", syscall.S_IFCHR, 1<<8|3)
	mk("fifo", syscall.S_IFIFO, 0)
	mk("sub/loopx", syscall.S_IFBLK, 7<<8|200)
	mk("pts/0", syscall.S_IFCHR, 136<<8|0)
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	s := genSpec(t, WithDevices(dir, "/dev/x", "rwm"))
	got := map[string]specs.LinuxDevice{}
	for _, d := range s.Linux.Devices {
		got[d.Path] = d
	}
	if len(got) != 2 {
		t.Fatalf("devices %+v", s.Linux.Devices)
	}
	if d := got["/dev/x/null"]; d.Type != "c" || d.Major != 1 || d.Minor != 3 {
		t.Errorf("null %+v", d)
	}
	if d := got["/dev/x/sub/loopx"]; d.Type != "b" || d.Major != 7 || d.Minor != 200 {
		t.Errorf("loopx %+v", d)
	}
	// A FIFO named directly is refused.
	if err := WithDevices(filepath.Join(dir, "fifo"), "", "rwm")(nsCtx(), &ContainerInfo{}, s); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("fifo: %v", err)
	}
}

func TestDeviceFromPathLargeNumbers(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "big")
	// major 300, minor 70000: both need the extended encoding.
	major, minor := uint64(300), uint64(70000)
	dev := (major&0xfff)<<8 | (major&^0xfff)<<32 | (minor & 0xff) | (minor&^0xff)<<12
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o600, int(dev)); err != nil {
		t.Skipf("mknod (needs root): %v", err)
	}
	d, err := DeviceFromPath(p)
	if err != nil {
		t.Fatal(err)
	}
	if d.Major != 300 || d.Minor != 70000 {
		t.Errorf("major %d minor %d", d.Major, d.Minor)
	}
}

func TestWithCPUCFS(t *testing.T) {
	for _, tc := range []struct {
		name          string
		quota         int64
		period        uint64
		wantPeriodNil bool
	}{
		{"both", 50000, 100000, false},
		{"quota only", 20000, 0, true},
		{"period only", -1, 250000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := genSpec(t, WithCPUs(2), WithCPUCFS(tc.quota, tc.period))
			cpu := s.Linux.Resources.CPU
			if cpu.Quota == nil || *cpu.Quota != tc.quota {
				t.Errorf("quota %v", cpu.Quota)
			}
			if tc.wantPeriodNil != (cpu.Period == nil) || (cpu.Period != nil && *cpu.Period != tc.period) {
				t.Errorf("period %v", cpu.Period)
			}
		})
	}
}

func TestWithNamespacePath(t *testing.T) {
	s := genSpec(t,
		WithNamespacePath(specs.NetworkNamespace, "/proc/42/ns/net"),
		WithNamespacePath(specs.UserNamespace, "/proc/42/ns/user"),
	)
	var net, user, count int
	for _, n := range s.Linux.Namespaces {
		switch n.Type {
		case specs.NetworkNamespace:
			count++
			if n.Path == "/proc/42/ns/net" {
				net++
			}
		case specs.UserNamespace:
			if n.Path == "/proc/42/ns/user" {
				user++
			}
		}
	}
	if net != 1 || count != 1 || user != 1 {
		t.Errorf("namespaces %+v", s.Linux.Namespaces)
	}
}

func TestWithSeccompProfile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "profile.json")
	os.WriteFile(p, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
		"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}`), 0o644)
	s := genSpec(t, WithDefaultSeccomp(), WithSeccompProfile(p))
	sc := s.Linux.Seccomp
	if sc.DefaultAction != specs.ActAllow || len(sc.Syscalls) != 1 || sc.Syscalls[0].Action != specs.ActErrno ||
		len(sc.Syscalls[0].Names) != 2 || sc.Syscalls[0].ErrnoRet == nil || *sc.Syscalls[0].ErrnoRet != 1 {
		t.Errorf("seccomp %+v", sc)
	}
}

func TestWithRootfsPropagation(t *testing.T) {
	for _, p := range []string{"shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable"} {
		if s := genSpec(t, WithRootfsPropagation(p)); s.Linux.RootfsPropagation != p {
			t.Errorf("%s: got %q", p, s.Linux.RootfsPropagation)
		}
	}
}

func TestWithRdtAndApparmor(t *testing.T) {
	s := genSpec(t, WithRdt("gold"), WithApparmorProfile("berth-test"))
	if s.Linux.IntelRdt == nil || s.Linux.IntelRdt.ClosID != "gold" {
		t.Errorf("intelRdt %+v", s.Linux.IntelRdt)
	}
	if s.Process.ApparmorProfile != "berth-test" {
		t.Errorf("apparmor profile %q", s.Process.ApparmorProfile)
	}
}

func TestWithUserNamespace(t *testing.T) {
	u := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	g := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	s := genSpec(t, WithUserNamespace(u, g))
	n := 0
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			n++
		}
	}
	if n != 1 || len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0] != u[0] || s.Linux.GIDMappings[0] != g[0] {
		t.Fatalf("namespaces %+v uid %+v gid %+v", s.Linux.Namespaces, s.Linux.UIDMappings, s.Linux.GIDMappings)
	}
	for _, tc := range []struct {
		name string
		opts []SpecOpts
	}{
		{"no gid mapping", []SpecOpts{WithUserNamespace(u, nil)}},
		{"joined", []SpecOpts{WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"}), WithUserNamespace(u, g)}},
	} {
		s := genSpec(t)
		var err error
		for _, o := range tc.opts {
			if err = o(nsCtx(), &ContainerInfo{}, s); err != nil {
				break
			}
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestWithNvidiaGPUs(t *testing.T) {
	s, err := GenerateSpec(context.Background(), &ContainerInfo{ID: "g", Namespace: "default"},
		WithNvidiaGPUs("/usr/bin/berthd", "/usr/bin/nvidia-container-cli", []int{0, 2}, []string{"PATH=/usr/bin"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Hooks == nil || len(s.Hooks.Prestart) != 1 {
		t.Fatalf("hooks %+v", s.Hooks)
	}
	h := s.Hooks.Prestart[0]
	want := "berthd oci-hook -- /usr/bin/nvidia-container-cli --load-kmods configure --device=0,2 --compute --compat32 --graphics --utility --video --display --pid={{pid}} {{rootfs}}"
	if h.Path != "/usr/bin/berthd" || strings.Join(h.Args, " ") != want || len(h.Env) != 1 {
		t.Fatalf("hook %+v, want args %q", h, want)
	}
	for _, bad := range []SpecOpts{
		WithNvidiaGPUs("berthd", "/x", nil, nil),
		WithNvidiaGPUs("/usr/bin/berthd", "/x", []int{-1}, nil),
	} {
		if _, err := GenerateSpec(context.Background(), &ContainerInfo{ID: "g", Namespace: "default"}, bad); err == nil {
			t.Error("bad GPU options accepted")
		}
	}
}
