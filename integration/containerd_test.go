package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// refDaemon is Debian's containerd on a temp root and socket: the
// reference our shim and our image archives must work with.
type refDaemon struct {
	Root, State, Address string
	cmd                  *exec.Cmd
	logs                 *lockedBuffer
}

func newContainerd(t *testing.T) *refDaemon {
	t.Helper()
	requireBinary(t, "/usr/bin/containerd")
	base := t.TempDir()
	state, err := os.MkdirTemp("/run", "ct-")
	if err != nil {
		t.Fatal(err)
	}
	r := &refDaemon{Root: filepath.Join(base, "root"), State: state, Address: filepath.Join(state, "c.sock"), logs: &lockedBuffer{}}
	cfg := filepath.Join(base, "config.toml")
	// CRI is not needed and would want a CNI setup.
	os.WriteFile(cfg, []byte("version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"), 0o644)
	r.cmd = exec.Command("/usr/bin/containerd", "--config", cfg, "--root", r.Root, "--state", r.State, "--address", r.Address)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nss, _ := r.ctrErr("ns", "ls", "-q")
		for _, ns := range strings.Fields(nss) {
			tasks, _ := r.ctrErr("-n", ns, "t", "ls", "-q")
			for _, id := range strings.Fields(tasks) {
				r.ctrErr("-n", ns, "t", "kill", "-s", "KILL", id)
				time.Sleep(200 * time.Millisecond)
				r.ctrErr("-n", ns, "t", "rm", "-f", id)
			}
			cs, _ := r.ctrErr("-n", ns, "c", "ls", "-q")
			for _, id := range strings.Fields(cs) {
				r.ctrErr("-n", ns, "c", "rm", id)
			}
		}
		r.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { r.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			r.cmd.Process.Kill()
			<-done
		}
		cleanupState(r.State, r.Address)
		cleanupMounts(r.Root)
		if t.Failed() {
			t.Logf("containerd logs:\n%s", r.logs.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := r.ctrErr("version"); err == nil {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("containerd did not start:\n%s", r.logs.String())
	return nil
}

func (r *refDaemon) ctrErr(args ...string) (string, error) {
	return runCmd("/usr/bin/ctr", append([]string{"--address", r.Address}, args...)...)
}

func (r *refDaemon) ctr(t *testing.T, args ...string) string {
	t.Helper()
	out, err := r.ctrErr(args...)
	if err != nil {
		t.Fatalf("containerd ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestContainerdRunsOurShim runs containers under Debian's containerd with
// our shim (runtime io.containerd.berth.v2).
// (containerd's ctr gives a --rootfs container no PATH, hence absolute
// commands.)
func TestContainerdRunsOurShim(t *testing.T) {
	r := newContainerd(t)
	rootfs := busyboxRootfs(t)
	out := r.ctr(t, "run", "--rm", "--runtime", "io.containerd.berth.v2", "--rootfs", rootfs, "viaours", "/bin/echo", "hello from our shim")
	mustContain(t, out, "hello from our shim")
	out, err := r.ctrErr("run", "--rm", "--runtime", "io.containerd.berth.v2", "--rootfs", rootfs, "code", "/bin/sh", "-c", "exit 7")
	if exitCode(err) != 7 {
		t.Fatalf("exit %d, want 7: %s", exitCode(err), out)
	}
	r.ctr(t, "run", "-d", "--runtime", "io.containerd.berth.v2", "--rootfs", rootfs, "bg", "/bin/sleep", "1000")
	mustContain(t, r.ctr(t, "t", "ls"), "bg", "RUNNING")
	out, err = r.ctrErr("t", "exec", "--exec-id", "x", "bg", "/bin/sh", "-c", "echo in-exec; exit 2")
	if exitCode(err) != 2 || !strings.Contains(out, "in-exec") {
		t.Fatalf("exec under containerd: %d %q", exitCode(err), out)
	}
	r.ctr(t, "t", "kill", "-s", "KILL", "bg")
	waitFor(t, func() bool { out, _ := r.ctrErr("t", "ls"); return strings.Contains(out, "STOPPED") })
	r.ctr(t, "t", "rm", "bg")
	r.ctr(t, "c", "rm", "bg")
}

// TestExportImportsIntoContainerd: an image exported by berthd imports
// into Debian's containerd and runs there.
func TestExportImportsIntoContainerd(t *testing.T) {
	archive := busyboxArchive(t, "oci")
	d := newDaemon(t, "")
	d.ctr("images", "import", archive)
	exported := filepath.Join(t.TempDir(), "export.tar")
	d.ctr("images", "export", exported, busyboxRef)
	r := newContainerd(t)
	r.ctr(t, "images", "import", exported)
	mustContain(t, r.ctr(t, "images", "ls"), busyboxRef)
	mustContain(t, r.ctr(t, "run", "--rm", busyboxRef, "fromberth", "/bin/echo", "exported by berth"), "exported by berth")
}
