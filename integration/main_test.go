// Package integration runs Berth end to end: a real berthd on a temp root and
// socket, our ctr and Debian's, real runc, shims and kernel mounts. The
// binaries are built once per test run in TestMain.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	binDir  string // our freshly built binaries
	repoDir string
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration tests need root (mounts, runc, cgroups)")
		os.Exit(1)
	}
	wd, _ := os.Getwd()
	repoDir = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "berth-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, b := range []string{"berthd", "ctr", "containerd-shim-berth-v2", "berth-testimage"} {
		if _, err := os.Stat(filepath.Join(repoDir, "cmd", b)); err != nil {
			continue
		}
		cmd := exec.Command("go", "build", "-buildvcs=false", "-o", filepath.Join(binDir, b), "./cmd/"+b)
		cmd.Dir = repoDir
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", b, err)
			os.Exit(1)
		}
	}
	// Shims are found on PATH, ours first.
	os.Setenv("PATH", binDir+":"+os.Getenv("PATH"))
	code := m.Run()
	os.RemoveAll(binDir)
	if rootfsDir != "" {
		os.RemoveAll(rootfsDir) // busyboxRootfs's, shared by the tests
	}
	os.Exit(code)
}

// daemon is one berthd under test.
type daemon struct {
	t       *testing.T
	Root    string
	State   string
	Address string
	Config  string
	cmd     *exec.Cmd
	logs    *lockedBuffer
	exited  chan struct{}
}

// newDaemon starts berthd on a fresh temp root and socket and stops it (and
// cleans up what it left) when the test ends.
func newDaemon(t *testing.T, extraConfig string) *daemon {
	t.Helper()
	base := t.TempDir()
	// Unix socket paths are limited to 108 bytes; keep state short.
	state, err := os.MkdirTemp("/run", "bt-")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{
		t:       t,
		Root:    filepath.Join(base, "root"),
		State:   state,
		Address: filepath.Join(state, "b.sock"),
		Config:  filepath.Join(base, "config.toml"),
	}
	if err := os.WriteFile(d.Config, []byte("version = 2\n"+extraConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.removeAll()
		d.Stop()
		cleanupState(d.State, d.Address)
		cleanupMounts(d.Root)
		if t.Failed() {
			t.Logf("berthd logs:\n%s", d.logs.String())
		}
	})
	d.Start()
	return d
}

func (d *daemon) Start() {
	d.t.Helper()
	d.logs = &lockedBuffer{}
	d.cmd = exec.Command(filepath.Join(binDir, "berthd"), "--config", d.Config, "--root", d.Root,
		"--state", d.State, "--address", d.Address, "--log-level", "debug")
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start berthd: %v", err)
	}
	d.exited = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := d.ctrErr("version"); err == nil {
			return
		}
		select {
		case <-d.exited:
			d.t.Fatalf("berthd exited at start: %v\n%s", d.cmd.ProcessState, d.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.t.Fatalf("berthd did not start serving:\n%s", d.logs.String())
}

// removeAll deletes every task and container the test left, through the
// API, so a failed test does not leak into the next.
func (d *daemon) removeAll() {
	select {
	case <-d.exited:
		return
	default:
	}
	nss, _ := d.ctrErr("ns", "ls", "-q")
	for _, ns := range strings.Fields(nss) {
		tasks, _ := d.ctrErr("-n", ns, "t", "ls", "-q")
		for _, id := range strings.Fields(tasks) {
			d.ctrErr("-n", ns, "t", "rm", "-f", id)
		}
		cs, _ := d.ctrErr("-n", ns, "c", "ls", "-q")
		for _, id := range strings.Fields(cs) {
			d.ctrErr("-n", ns, "c", "rm", id)
		}
	}
}

// Stop sends SIGTERM and waits; it reports how long the daemon took.
func (d *daemon) Stop() time.Duration {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	start := time.Now()
	select {
	case <-d.exited:
		return 0
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
	return time.Since(start)
}

// Kill9 kills the daemon the hard way, as a crash would.
func (d *daemon) Kill9() {
	d.cmd.Process.Kill()
	<-d.exited
}

// ctr runs our ctr against the daemon and fails the test on error.
func (d *daemon) ctr(args ...string) string {
	d.t.Helper()
	out, err := d.ctrErr(args...)
	if err != nil {
		d.t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (d *daemon) ctrErr(args ...string) (string, error) {
	return runCmd(filepath.Join(binDir, "ctr"), append([]string{"--address", d.Address}, args...)...)
}

// dctr runs Debian's containerd ctr against our daemon.
func (d *daemon) dctr(args ...string) string {
	d.t.Helper()
	out, err := d.dctrErr(args...)
	if err != nil {
		d.t.Fatalf("/usr/bin/ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (d *daemon) dctrErr(args ...string) (string, error) {
	return runCmd("/usr/bin/ctr", append([]string{"--address", d.Address}, args...)...)
}

func runCmd(bin string, args ...string) (string, error) {
	return runCmdTimeout(2*time.Minute, bin, args...)
}

// runCmdTimeout runs bin, killed after timeout; stdout and stderr together.
func runCmdTimeout(timeout time.Duration, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// cleanupState removes what a daemon's containers left: shims that
// still serve its address, runc containers whose bundle is under its state
// dir, mounts and files.
func cleanupState(state, address string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "containerd-shim") {
			continue
		}
		if strings.Contains(string(cmdline), "\x00"+address+"\x00") {
			if pid, err := strconv.Atoi(e.Name()); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for _, base := range []string{filepath.Join(state, "runc"), "/run/containerd/runc", "/run/berth/runc"} {
		nss, _ := os.ReadDir(base)
		for _, ns := range nss {
			root := filepath.Join(base, ns.Name())
			out, err := exec.Command("runc", "--root", root, "list", "-f", "json").Output()
			if err != nil {
				continue
			}
			var list []struct {
				ID     string `json:"id"`
				Bundle string `json:"bundle"`
			}
			json.Unmarshal(out, &list)
			for _, c := range list {
				if strings.HasPrefix(c.Bundle, state+"/") {
					exec.Command("runc", "--root", root, "delete", "-f", c.ID).Run()
				}
			}
			// The namespace's runc root, if nothing is left in it (runc
			// makes it again when needed).
			os.Remove(root)
		}
	}
	// A shim killed here leaves its socket (outside state) behind; each
	// bundle's address file names it.
	addrs, _ := filepath.Glob(filepath.Join(state, "*", "*", "*", "address"))
	for _, a := range addrs {
		if b, err := os.ReadFile(a); err == nil {
			sock := strings.TrimPrefix(strings.TrimSpace(string(b)), "unix://")
			if strings.HasPrefix(sock, "/run/berth/s/") || strings.HasPrefix(sock, "/run/containerd/s/") {
				os.Remove(sock)
			}
		}
	}
	cleanupMounts(state)
	os.RemoveAll(state)
}

// cleanupMounts unmounts everything below dir, deepest first.
func cleanupMounts(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var targets []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			targets = append(targets, f[4])
		}
	}
	for i := len(targets) - 1; i >= 0; i-- {
		syscall.Unmount(targets[i], syscall.MNT_DETACH)
	}
}

// requireBinary fails (never skips) when a tool the test needs is missing:
// CI installs them all.
func requireBinary(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("%s is required (apt-get install it; .ci/run does): %v", path, err)
	}
}
