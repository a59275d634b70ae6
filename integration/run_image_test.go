package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/console"
)

// TestRunImage is the flow users come for: import an image, run it, and
// with --rm leave nothing behind; with both shims.
func TestRunImage(t *testing.T) {
	archive := busyboxArchive(t, "oci")
	forEachShim(t, func(t *testing.T, d *daemon) {
		d.ctr("images", "import", archive)
		snapsBefore := d.ctr("snapshots", "ls")
		out := d.ctr("run", "--rm", busyboxRef, "demo", "sh", "-c", "echo hello; cat /etc/passwd | head -1")
		mustContain(t, out, "hello", "root:")
		out, err := d.ctrErr("run", "--rm", "--env", "CODE=3", busyboxRef, "env3", "sh", "-c", "exit $CODE")
		if exitCode(err) != 3 {
			t.Fatalf("exit %d want 3: %s", exitCode(err), out)
		}
		// The same id again at once: the new task waits for the last one's
		// teardown (bundle, runc state) that Delete left running.
		for i := 0; i < 3; i++ {
			mustContain(t, d.ctr("run", "--rm", busyboxRef, "again", "echo", fmt.Sprint("round-", i)), fmt.Sprint("round-", i))
		}
		d.ctr("run", "-d", busyboxRef, "again", "sleep", "1000")
		mustContain(t, d.ctr("t", "ls"), "again", "RUNNING")
		d.ctr("t", "rm", "-f", "again")
		d.ctr("c", "rm", "again")
		// Two steps: container create, then task start (attached and -d).
		d.ctr("c", "create", busyboxRef, "two", "sh", "-c", "echo two-step")
		// Attached, task start deletes the task when it exits.
		mustContain(t, d.ctr("t", "start", "two"), "two-step")
		d.ctr("c", "rm", "two")
		d.ctr("c", "create", busyboxRef, "bg", "sleep", "1000")
		d.ctr("t", "start", "-d", "bg")
		mustContain(t, d.ctr("t", "ls"), "bg", "RUNNING")
		d.ctr("t", "rm", "-f", "bg")
		d.ctr("c", "rm", "bg")
		if got := d.ctr("snapshots", "ls"); got != snapsBefore {
			t.Fatalf("snapshots left behind:\nbefore:\n%s\nafter:\n%s", snapsBefore, got)
		}
		if out := d.ctr("c", "ls", "-q"); strings.TrimSpace(out) != "" {
			t.Fatalf("containers left: %q", out)
		}
		assertNoBundles(t, d)
	})
}

// TestDebianCtrRunsOnBerth: containerd's own ctr drives a container through
// berthd, in one step and in two.
func TestDebianCtrRunsOnBerth(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	archive := busyboxArchive(t, "oci")
	d := newDaemon(t, "")
	d.dctr("images", "import", archive)
	out := d.dctr("run", "--rm", busyboxRef, "deb1", "echo", "debian ctr says hi")
	mustContain(t, out, "debian ctr says hi")
	d.dctr("container", "create", busyboxRef, "deb2", "echo", "created-by-debian")
	mustContain(t, d.dctr("task", "start", "deb2"), "created-by-debian")
	d.dctr("container", "rm", "deb2")
	assertNoBundles(t, d)
}

// TestRunTTY runs `ctr run -t` on a real pseudo-terminal: an interactive
// shell that sees the terminal's size.
func TestRunTTY(t *testing.T) {
	archive := busyboxArchive(t, "oci")
	d := newDaemon(t, "")
	d.ctr("images", "import", archive)
	pty, slave, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	if err := pty.Resize(console.WinSize{Height: 33, Width: 101}); err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(slave, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	cmd := exec.Command(filepath.Join(binDir, "ctr"), "-a", d.Address, "run", "--rm", "-t", busyboxRef, "tty1", "sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = ttyAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		r := bufio.NewReader(pty)
		var cur []byte
		for {
			b, err := r.ReadByte()
			if err != nil {
				close(lines)
				return
			}
			cur = append(cur, b)
			if b == '\n' || strings.HasSuffix(string(cur), "# ") {
				lines <- string(cur)
				cur = nil
			}
		}
	}()
	expect := func(want string) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		var seen strings.Builder
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("terminal closed before %q:\n%s", want, seen.String())
				}
				seen.WriteString(l)
				if strings.Contains(seen.String(), want) {
					return
				}
			case <-deadline:
				t.Fatalf("did not see %q:\n%s", want, seen.String())
			}
		}
	}
	// Type only once the shell prompts, as a person would.
	expect("# ")
	pty.Write([]byte("echo $((6*7)); stty size\n"))
	expect("42")
	expect("33 101")
	pty.Write([]byte("exit 5\n"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if exitCode(err) != 5 {
			t.Fatalf("tty run exit %d, want 5", exitCode(err))
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("ctr run -t did not exit")
	}
}

// `ctr c rm` of a container whose task runs fails and touches nothing: the
// container keeps its record, its snapshot and a working root file system;
// removing the snapshot itself is refused too.
// With the task stopped, rm deletes the task, the container and the
// snapshot (containerd's ctr does the same).
func TestRemoveContainerWithTask(t *testing.T) {
	archive := busyboxArchive(t, "oci")
	d := newDaemon(t, "")
	d.ctr("images", "import", archive)
	snapsBefore := d.ctr("snapshots", "ls")
	d.ctr("run", "-d", busyboxRef, "live", "sleep", "1000")
	out, err := d.ctrErr("c", "rm", "live")
	mustFail(t, out, err, "non stopped")
	mustContain(t, d.ctr("snapshots", "ls"), "live")
	mustContain(t, d.ctr("c", "ls"), "live")
	// Nor does any client's snapshot remove take it from under the task.
	out, err = d.ctrErr("snapshots", "rm", "live")
	mustFail(t, out, err, "has a task")
	requireBinary(t, "/usr/bin/ctr")
	out, err = d.dctrErr("snapshots", "rm", "live")
	mustFail(t, out, err, "has a task")
	mustContain(t, d.ctr("t", "exec", "--exec-id", "w", "live", "sh", "-c", "echo kept > /f && cat /f"), "kept")
	d.ctr("t", "kill", "-s", "KILL", "live")
	waitFor(t, func() bool { return taskStopped(d, "live") })
	d.ctr("c", "rm", "live")
	if out := d.ctr("c", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left: %q", out)
	}
	if got := d.ctr("snapshots", "ls"); got != snapsBefore {
		t.Fatalf("snapshots left behind:\nbefore:\n%s\nafter:\n%s", snapsBefore, got)
	}
	assertNoBundles(t, d)
}
