package oci

import (
	"reflect"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMergeEnv(t *testing.T) {
	for _, tc := range []struct {
		name            string
		base, overrides []string
		want            []string
	}{
		{"append", []string{"A=1"}, []string{"B=2"}, []string{"A=1", "B=2"}},
		{"replace keeps position", []string{"A=1", "B=2"}, []string{"A=3"}, []string{"A=3", "B=2"}},
		{"remove bare key", []string{"A=1", "B=2"}, []string{"A"}, []string{"B=2"}},
		{"remove then set", []string{"A=1"}, []string{"A", "A=5"}, []string{"A=5"}},
		{"empty value kept", []string{"A=1"}, []string{"A="}, []string{"A="}},
		{"value with equals", nil, []string{"A=b=c"}, []string{"A=b=c"}},
		{"duplicate override last wins", nil, []string{"A=1", "A=2"}, []string{"A=2"}},
		{"duplicate base collapsed", []string{"A=1", "A=2"}, nil, []string{"A=2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeEnv(tc.base, tc.overrides); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestProcessOpts(t *testing.T) {
	s := genSpec(t,
		WithProcessArgs("sh", "-c", "echo hi"),
		WithEnv([]string{"PATH=/bin", "FOO=bar"}),
		WithProcessCwd("/work"),
		WithTTY,
		WithTTYSize(80, 24),
		WithHostname("box"),
		WithAnnotations(map[string]string{"a": "b"}),
		WithRlimit("RLIMIT_NOFILE", 4096, 2048),
		WithNoNewPrivileges(false),
	)
	p := s.Process
	if !reflect.DeepEqual(p.Args, []string{"sh", "-c", "echo hi"}) {
		t.Errorf("args %v", p.Args)
	}
	if !reflect.DeepEqual(p.Env, []string{"PATH=/bin", "FOO=bar", "TERM=xterm"}) {
		t.Errorf("env %v", p.Env)
	}
	if p.Cwd != "/work" || !p.Terminal || p.ConsoleSize.Width != 80 || p.NoNewPrivileges {
		t.Errorf("process %+v", p)
	}
	if s.Hostname != "box" || s.Annotations["a"] != "b" {
		t.Errorf("hostname %q annotations %v", s.Hostname, s.Annotations)
	}
	if len(p.Rlimits) != 1 || p.Rlimits[0].Hard != 4096 || p.Rlimits[0].Soft != 2048 {
		t.Errorf("rlimits %v", p.Rlimits)
	}

	// TERM set by the user survives WithTTY.
	s = genSpec(t, WithEnv([]string{"TERM=vt100"}), WithTTY)
	if !reflect.DeepEqual(s.Process.Env[1:], []string{"TERM=vt100"}) {
		t.Errorf("env %v", s.Process.Env)
	}
}

func TestInvalidOpts(t *testing.T) {
	long := make([]byte, 65)
	for i := range long {
		long[i] = 'a'
	}
	for name, opt := range map[string]SpecOpts{
		"relative cwd":        WithProcessCwd("work"),
		"empty env":           WithEnv([]string{""}),
		"env without key":     WithEnv([]string{"=x"}),
		"long hostname":       WithHostname(string(long)),
		"relative mount":      WithMounts([]specs.Mount{{Destination: "data", Type: "bind", Source: "/data"}}),
		"rlimit soft > hard":  WithRlimit("RLIMIT_NOFILE", 1, 2),
		"empty annotation":    WithAnnotations(map[string]string{"": "x"}),
		"bad namespace type":  WithHostNamespace("bogus"),
		"zero memory":         WithMemoryLimit(0),
		"negative memory":     WithMemoryLimit(-5),
		"tiny cpus":           WithCPUs(0.001),
		"zero cpus":           WithCPUs(0),
		"low shares":          WithCPUShares(1),
		"zero pids":           WithPidsLimit(0),
		"cgroup dotdot":       WithCgroup("/a/../../b"),
		"relative cg dotdot":  WithCgroup("../x"),
		"unknown capability":  WithAddedCapabilities([]string{"CAP_BOGUS"}),
		"empty username":      WithUsername(""),
		"uid beyond maxint32": WithUserID(1 << 31),
		"empty root path":     WithRootFSPath(""),
	} {
		t.Run(name, func(t *testing.T) {
			s := defaultSpec("ns", "id")
			if err := opt(nsCtx(), &ContainerInfo{ID: "id", Namespace: "ns"}, s); !errdefs.IsInvalidArgument(err) {
				t.Fatalf("err %v, want invalid argument", err)
			}
		})
	}
}

func TestWithMounts(t *testing.T) {
	s := genSpec(t, WithMounts([]specs.Mount{
		{Destination: "/dev/shm/", Type: "tmpfs", Source: "shm", Options: []string{"size=1g"}},
		{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "rw"}},
	}))
	var shm []specs.Mount
	for _, m := range s.Mounts {
		if m.Destination == "/dev/shm" {
			shm = append(shm, m)
		}
	}
	if len(shm) != 1 || !reflect.DeepEqual(shm[0].Options, []string{"size=1g"}) {
		t.Errorf("/dev/shm not replaced: %+v", shm)
	}
	if last := s.Mounts[len(s.Mounts)-1]; last.Destination != "/data" || last.Source != "/srv/data" {
		t.Errorf("last mount %+v", last)
	}
}
