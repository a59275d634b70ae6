package preflight

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKernel(t *testing.T) {
	for _, tc := range []struct {
		in           string
		major, minor int
		err          bool
	}{
		{"6.1.0-18-amd64", 6, 1, false},
		{"5.4", 5, 4, false},
		{"4.19.0+", 4, 19, false},
		{"5.10-rc1", 5, 10, false},
		{"3.10.0-1160.el7.x86_64", 3, 10, false},
		{"6", 0, 0, true},
		{"x.y", 0, 0, true},
		{"6.x", 0, 0, true},
	} {
		major, minor, err := parseKernel(tc.in)
		if (err != nil) != tc.err || major != tc.major || minor != tc.minor {
			t.Errorf("parseKernel(%q) = %d, %d, %v", tc.in, major, minor, err)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  Result
		want Status
		has  string
	}{
		{"new kernel", classifyKernel("6.1.0-18-amd64"), OK, "kernel 6.1.0"},
		{"old kernel", classifyKernel("4.19.0"), Warn, "older than 5.4"},
		{"ancient kernel", classifyKernel("3.10.0"), Fail, "needs 4.0"},
		{"odd kernel", classifyKernel("weird"), Warn, "not understood"},
		{"cgroup v2", classifyCgroups("/sys/fs/cgroup", cgroupV2, []string{"cpu", "memory", "pids", "io"}), OK, "cgroup v2 (unified), controllers: cpu memory pids io"},
		{"hybrid", classifyCgroups("/sys/fs/cgroup", cgroupHybrid, []string{"cpu", "memory", "pids"}), OK, "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)"},
		{"no memory", classifyCgroups("/sys/fs/cgroup", cgroupV1, []string{"cpu", "pids"}), Warn, "controllers memory missing"},
		{"no controllers", classifyCgroups("/c", cgroupV2, nil), Warn, "controllers: none"},
		{"userns on", classifyUserns("15000"), OK, "max_user_namespaces = 15000"},
		{"userns off", classifyUserns("0"), Warn, "disabled"},
		{"userns junk", classifyUserns("x"), Warn, "not understood"},
		{"seccomp filters", classifySeccomp("Name:\tx\nSeccomp:\t0\nSeccomp_filters:\t0\n"), OK, "filters supported (berthd itself unconfined)"},
		{"seccomp filtered", classifySeccomp("Seccomp:\t2\n"), OK, "berthd itself filtered"},
		{"no seccomp", classifySeccomp("Name:\tx\n"), Warn, "not supported"},
		{"disk ok", classifyDisk("/r", 50<<30, 100<<30, 1e6, 2e6), OK, "50.0 GiB free of 100.0 GiB under /r, 50% of inodes free"},
		{"disk low", classifyDisk("/r", 1<<30, 100<<30, 1e6, 2e6), Warn, "under 5.0 GiB"},
		{"disk full", classifyDisk("/r", 100<<20, 100<<30, 1e6, 2e6), Fail, "100.0 MiB free"},
		{"no inodes", classifyDisk("/r", 50<<30, 100<<30, 10, 2e6), Fail, "inodes"},
		{"no inode counts", classifyDisk("/r", 50<<30, 100<<30, 0, 0), OK, "under /r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got.Status != tc.want || !strings.Contains(tc.got.String(), tc.has) {
				t.Fatalf("got %q (%s), want %s containing %q", tc.got.String(), tc.got.Status, tc.want, tc.has)
			}
		})
	}
}

func TestParseProcCgroups(t *testing.T) {
	in := "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t2\t1\nmemory\t4\t54\t1\nnet_cls\t0\t2\t1\npids\t8\t2\t0\n\n"
	if got := strings.Join(parseProcCgroups(in), ","); got != "cpuset,memory" {
		t.Fatalf("got %q", got)
	}
}

func TestResultString(t *testing.T) {
	for _, tc := range []struct {
		r    Result
		want string
	}{
		{Result{Status: OK, What: "runc 1.1", Why: "needed"}, "ok: runc 1.1 — needed"},
		{Result{Status: Fail, What: "config"}, "fail: config"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("got %q want %q", got, tc.want)
		}
	}
}

func TestRunRecoversAndFails(t *testing.T) {
	res := Run(context.Background(), []Check{
		{"good", func(context.Context) Result { return Result{Status: OK, What: "fine"} }},
		{"boom", func(context.Context) Result { panic("oops") }},
	})
	if len(res) != 2 || res[0].Name != "good" || res[1].Status != Fail || !strings.Contains(res[1].Why, "oops") {
		t.Fatalf("%+v", res)
	}
	if !Failed(res) || Failed(res[:1]) {
		t.Fatal("Failed")
	}
	if got := Format(res[:1]); got != "ok: fine\n" {
		t.Fatalf("Format = %q", got)
	}
}

func TestShimAndRunc(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "containerd-shim-test-v2")
	noexec := filepath.Join(dir, "containerd-shim-noexec-v2")
	os.WriteFile(exe, []byte("#!/bin/sh\necho 'fake 1.0'\n"), 0o755)
	os.WriteFile(noexec, nil, 0o644)
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	for _, tc := range []struct {
		name string
		got  Result
		want Status
	}{
		{"shim on PATH", checkShim("containerd-shim-test-v2"), OK},
		{"shim by path", checkShim(exe), OK},
		{"shim missing", checkShim("containerd-shim-nosuch-v9"), Fail},
		{"shim absolute missing", checkShim(filepath.Join(dir, "nosuch")), Fail},
		{"shim not executable", checkShim(noexec), Fail},
		{"runc missing", checkRunc(context.Background(), "runc-nosuch"), Fail},
		{"fake runc", checkRunc(context.Background(), exe), OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got.Status != tc.want {
				t.Fatalf("%s: %s", tc.name, tc.got)
			}
		})
	}
	if r := checkRunc(context.Background(), exe); !strings.Contains(r.What, "fake 1.0") {
		t.Fatalf("version not shown: %s", r)
	}
}

func TestExistingParent(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o600)
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{dir, dir, false},
		{filepath.Join(dir, "a", "b"), dir, false},
		{file, "", true},
		{"", "", true},
	} {
		got, err := existingParent(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("existingParent(%q) = %q, %v", tc.in, got, err)
		}
	}
}

// TestHost runs the real checks on this machine; only their shape is
// asserted, since hosts differ.
func TestHost(t *testing.T) {
	res := Run(context.Background(), Checks(Options{Root: t.TempDir()}))
	names := map[string]bool{}
	for _, r := range res {
		t.Log(r)
		names[r.Name] = true
		if r.What == "" || (r.Status != OK && r.Status != Warn && r.Status != Fail) {
			t.Errorf("malformed result %+v", r)
		}
	}
	for _, n := range []string{"kernel", "overlayfs", "cgroups", "runc", "shim", "userns", "seccomp", "disk"} {
		if !names[n] {
			t.Errorf("no %s check", n)
		}
	}
	if os.Geteuid() == 0 {
		if r := checkOverlay(t.TempDir()); r.Status != OK {
			t.Errorf("overlay on a temp dir as root: %s", r)
		}
	}
}
