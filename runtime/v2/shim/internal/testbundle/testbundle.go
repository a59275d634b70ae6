// Package testbundle builds tiny OCI bundles for the shim's tests: a rootfs
// holding the host's static busybox and a config.json for real runc.
package testbundle

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Busybox is the static busybox the rootfs gets.
const Busybox = "/bin/busybox"

var applets = []string{"sh", "sleep", "cat", "echo", "true", "false", "ls", "ps", "kill", "head", "dd", "stty", "env", "yes"}

// Skip skips t unless runc, busybox and root are all available.
func Skip(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat(Busybox); err != nil {
		t.Skip("needs " + Busybox)
	}
}

// New writes a bundle in a new temporary directory and returns its path.
// args is the container's command; edit, if set, adjusts the spec before it
// is written.
func New(t testing.TB, args []string, edit func(*specs.Spec)) string {
	t.Helper()
	Skip(t)
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyFile(Busybox, filepath.Join(rootfs, "bin", "busybox")); err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	s := Spec(args)
	// Without a cgroups path runc names the cgroup after the container ID,
	// and test packages running in parallel reuse IDs ("exec"): one
	// package's paused cgroup would freeze another's create.
	s.Linux.CgroupsPath = "/berth-test/" + filepath.Base(bundle) + "-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() {
		// runc removes the leaf; the shared parent goes once it is empty
		// (rmdir fails harmlessly while another test still uses it).
		parents, _ := filepath.Glob("/sys/fs/cgroup/*/berth-test")
		for _, p := range parents {
			os.Remove(p)
		}
	})
	if edit != nil {
		edit(s)
	}
	Write(t, bundle, s)
	return bundle
}

// Write (re)writes bundle/config.json.
func Write(t testing.TB, bundle string, s *specs.Spec) {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Spec is a minimal spec like `runc spec` writes, running args.
func Spec(args []string) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/bin", "TERM=xterm"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "berth-test",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			MaskedPaths:   []string{"/proc/kcore", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// BuildShim builds cmd/containerd-shim-berth-v2 into a new temporary
// directory, for a test package's TestMain; remove dir when done.
func BuildShim() (bin, dir string, err error) {
	dir, err = os.MkdirTemp("", "berth-shim-test")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "containerd-shim-berth-v2")
	_, file, _, _ := runtime.Caller(0)
	pkg := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "..", "cmd", "containerd-shim-berth-v2")
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("build shim: %w", err)
	}
	return bin, dir, nil
}

// Exited reports whether process pid is gone or a zombie.
func Exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// RunWithShim is a TestMain body: it builds the shim into *bin, runs the
// tests and removes the build.
func RunWithShim(m *testing.M, bin *string) int {
	b, dir, err := BuildShim()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin = b
	return m.Run()
}
