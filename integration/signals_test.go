package integration

import (
	"bufio"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startAttached starts an attached ctr command whose container prints
// "ready" once its traps are set, and returns when it has.
func startAttached(t *testing.T, d *daemon, args ...string) (*exec.Cmd, *strings.Builder, <-chan error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "ctr"), append([]string{"--address", d.Address}, args...)...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	ready, scanned := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-scanned // out is complete, and no longer written
		done <- err
	}()
	go func() {
		defer close(scanned)
		s := bufio.NewScanner(pr)
		for s.Scan() {
			out.WriteString(s.Text() + "\n")
			if s.Text() == "ready" {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("ctr %v ended before the container was ready: %v\n%s", args, err, out)
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("ctr %v: container never ready", args)
	}
	return cmd, out, done
}

// An attached ctr (run, exec) sends the signals it gets to the process.
func TestAttachedForwardsSignals(t *testing.T) {
	d := newDaemon(t, "")
	rootfs := busyboxRootfs(t)
	trap := func(sig string, code int) string {
		return "trap 'echo got " + sig + "; exit " + string(rune('0'+code)) + "' " + sig + "; echo ready; while :; do sleep 0.05; done"
	}
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		code int
	}{{syscall.SIGUSR1, "USR1", 7}, {syscall.SIGTERM, "TERM", 8}, {syscall.SIGINT, "INT", 9}} {
		cmd, out, done := startAttached(t, d, "run", "--rm", "--rootfs", rootfs, "sig", "sh", "-c", trap(tc.name, tc.code))
		cmd.Process.Signal(tc.sig)
		if err := <-done; exitCode(err) != tc.code || !strings.Contains(out.String(), "got "+tc.name) {
			t.Fatalf("run, %s sent to ctr: exit code %d (want %d), output %q", tc.name, exitCode(err), tc.code, out)
		}
	}
	d.ctr("run", "-d", "--rootfs", rootfs, "host", "sleep", "1000")
	cmd, out, done := startAttached(t, d, "t", "exec", "--exec-id", "trap", "host", "sh", "-c", trap("USR2", 6))
	cmd.Process.Signal(syscall.SIGUSR2)
	if err := <-done; exitCode(err) != 6 || !strings.Contains(out.String(), "got USR2") {
		t.Fatalf("exec, USR2 sent to ctr: exit code %d (want 6), output %q", exitCode(err), out)
	}
	d.ctr("t", "rm", "-f", "host")
	d.ctr("c", "rm", "host")
	if left := strings.TrimSpace(d.ctr("c", "ls", "-q")); left != "" {
		t.Fatalf("containers left: %q", left)
	}
}
