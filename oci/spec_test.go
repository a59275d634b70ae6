package oci

import (
	"context"
	"reflect"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/typeurl"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func nsCtx() context.Context {
	return namespaces.WithNamespace(context.Background(), "testns")
}

func genSpec(t *testing.T, opts ...SpecOpts) *specs.Spec {
	t.Helper()
	s, err := GenerateSpec(nsCtx(), &ContainerInfo{ID: "c1"}, opts...)
	if err != nil {
		t.Fatalf("GenerateSpec: %v", err)
	}
	return s
}

func TestDefaultSpec(t *testing.T) {
	s := genSpec(t)
	if s.Version != specs.Version {
		t.Errorf("ociVersion %q, want %q", s.Version, specs.Version)
	}
	if s.Root == nil || s.Root.Path != "rootfs" || s.Root.Readonly {
		t.Errorf("root %+v", s.Root)
	}
	if s.Hostname != "" {
		t.Errorf("hostname %q, want empty", s.Hostname)
	}
	p := s.Process
	if p.Cwd != "/" || !p.NoNewPrivileges || p.Terminal || p.User.UID != 0 || p.User.GID != 0 {
		t.Errorf("process %+v", p)
	}
	if !reflect.DeepEqual(p.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}) {
		t.Errorf("env %v", p.Env)
	}
	want := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
		"CAP_KILL", "CAP_AUDIT_WRITE"}
	c := p.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
		if !reflect.DeepEqual(set, want) {
			t.Errorf("%s caps %v", name, set)
		}
	}
	if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("inheritable %v ambient %v, want none", c.Inheritable, c.Ambient)
	}
	if !reflect.DeepEqual(p.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}}) {
		t.Errorf("rlimits %v", p.Rlimits)
	}

	mounts := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		mounts[m.Destination] = m
	}
	for dest, typ := range map[string]string{"/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts",
		"/dev/shm": "tmpfs", "/dev/mqueue": "mqueue", "/sys": "sysfs"} {
		if m, ok := mounts[dest]; !ok || m.Type != typ {
			t.Errorf("mount %s: %+v", dest, m)
		}
	}
	if !contains(mounts["/sys"].Options, "ro") {
		t.Errorf("/sys options %v, want ro", mounts["/sys"].Options)
	}
	if !reflect.DeepEqual(mounts["/dev/pts"].Options, []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}) {
		t.Errorf("/dev/pts options %v", mounts["/dev/pts"].Options)
	}

	l := s.Linux
	if l.CgroupsPath != "/testns/c1" {
		t.Errorf("cgroupsPath %q", l.CgroupsPath)
	}
	var nsTypes []specs.LinuxNamespaceType
	for _, n := range l.Namespaces {
		nsTypes = append(nsTypes, n.Type)
	}
	if !reflect.DeepEqual(nsTypes, []specs.LinuxNamespaceType{"pid", "ipc", "uts", "mount", "network"}) {
		t.Errorf("namespaces %v", nsTypes)
	}
	if !contains(l.MaskedPaths, "/proc/kcore") || !contains(l.MaskedPaths, "/sys/firmware") || len(l.MaskedPaths) != 10 {
		t.Errorf("masked paths %v", l.MaskedPaths)
	}
	if !reflect.DeepEqual(l.ReadonlyPaths, []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}) {
		t.Errorf("readonly paths %v", l.ReadonlyPaths)
	}
	devs := l.Resources.Devices
	if len(devs) < 2 || devs[0].Allow || devs[0].Access != "rwm" || devs[0].Type != "" {
		t.Fatalf("devices must start with deny-all: %+v", devs)
	}
	allowed := map[[2]int64]bool{}
	for _, d := range devs[1:] {
		if d.Allow && d.Type == "c" && d.Major != nil && d.Minor != nil && d.Access == "rwm" {
			allowed[[2]int64{*d.Major, *d.Minor}] = true
		}
	}
	for _, dev := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}} {
		if !allowed[dev] {
			t.Errorf("device c %d:%d not allowed", dev[0], dev[1])
		}
	}
	if l.Seccomp != nil {
		t.Errorf("seccomp set by default")
	}
}

func TestGenerateSpecErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  context.Context
		c    *ContainerInfo
	}{
		{"nil info", nsCtx(), nil},
		{"no id", nsCtx(), &ContainerInfo{}},
		{"bad id", nsCtx(), &ContainerInfo{ID: "../x"}},
		{"no namespace", context.Background(), &ContainerInfo{ID: "c1"}},
		{"bad namespace", context.Background(), &ContainerInfo{ID: "c1", Namespace: "a/b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := GenerateSpec(tc.ctx, tc.c); !errdefs.IsInvalidArgument(err) {
				t.Fatalf("err %v, want invalid argument", err)
			}
		})
	}
}

func TestNamespaceFromInfoAndOptionErrorStops(t *testing.T) {
	c := &ContainerInfo{ID: "web", Namespace: "prod"}
	s, err := GenerateSpec(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.CgroupsPath != "/prod/web" {
		t.Errorf("cgroupsPath %q", s.Linux.CgroupsPath)
	}
	ran := false
	_, err = GenerateSpec(nsCtx(), &ContainerInfo{ID: "c1"}, WithMemoryLimit(-1), func(context.Context, *ContainerInfo, *specs.Spec) error {
		ran = true
		return nil
	})
	if !errdefs.IsInvalidArgument(err) || ran {
		t.Fatalf("err %v ran %v", err, ran)
	}
}

func TestSpecTypeURL(t *testing.T) {
	s := genSpec(t, WithProcessArgs("sh"))
	a, err := typeurl.MarshalAny(s)
	if err != nil {
		t.Fatal(err)
	}
	if a.TypeUrl != typeurl.SpecURL {
		t.Fatalf("type url %q", a.TypeUrl)
	}
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.(*specs.Spec); !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip changed the spec")
	}
}
