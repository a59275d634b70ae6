package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// shimState is `ctr shim state` output, as containerd's ctr prints it.
type shimState struct {
	ID         string    `json:"id"`
	Bundle     string    `json:"bundle"`
	Pid        uint32    `json:"pid"`
	Status     int       `json:"status"`
	Stdout     string    `json:"stdout"`
	ExitStatus uint32    `json:"exit_status"`
	ExitedAt   time.Time `json:"exited_at"`
}

// containerd.v1.types.Status values.
const (
	statusRunning = 2
	statusStopped = 3
)

func parseShimState(t *testing.T, out string) shimState {
	t.Helper()
	var st shimState
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("shim state is not JSON: %v\n%s", err, out)
	}
	return st
}

// `ctr shim` talks straight to a task's shim, ours and containerd's: state
// as containerd's ctr prints it (identical to Debian's ctr where that
// finds the shim), exec with and without IO, delete of an exec, start and
// errors; the shim is found through the bundle's address file when the
// socket path cannot be derived from --address.
func TestCtrShim(t *testing.T) {
	forEachShim(t, func(t *testing.T, d *daemon) {
		rootfs := busyboxRootfs(t)
		d.ctr("run", "-d", "--rootfs", rootfs, "sh1", "sleep", "1000")
		var pid uint32
		for _, r := range tableRows(d.ctr("t", "ls")) {
			if r[0] == "sh1" {
				p, _ := strconv.Atoi(r[1])
				pid = uint32(p)
			}
		}
		if pid == 0 {
			t.Fatalf("no pid for sh1 in t ls")
		}

		out := d.ctr("shim", "--id", "sh1", "state")
		st := parseShimState(t, out)
		bundle := filepath.Join(d.State, "io.containerd.runtime.v2.task", "default", "sh1")
		if st.ID != "sh1" || st.Pid != pid || st.Status != statusRunning || st.Bundle != bundle {
			t.Fatalf("state %+v, want id sh1, pid %d, status RUNNING (2), bundle %s:\n%s", st, pid, bundle, out)
		}
		mustContain(t, out, `"exited_at": "0001-01-01T00:00:00Z"`)
		// runc agrees: our shim starts its containers through runc's exec
		// FIFO rather than `runc start`, and must leave runc's state as
		// runc start would.
		runcRoot := filepath.Join(d.State, "runc", "default")
		if usesContainerdShim(t, d) {
			runcRoot = "/run/containerd/runc/default"
		}
		if rs, err := runCmd("runc", "--root", runcRoot, "state", "sh1"); err != nil || !strings.Contains(rs, `"status": "running"`) {
			t.Fatalf("runc state of sh1: %v\n%s", err, rs)
		}
		if _, err := os.Lstat(filepath.Join(runcRoot, "sh1", "exec.fifo")); !os.IsNotExist(err) {
			t.Fatalf("exec fifo left after the start: %v", err)
		}
		if usesContainerdShim(t, d) {
			// Debian's ctr finds containerd's shim (not ours: it looks
			// only in /run/containerd/s) and prints the same.
			if theirs := d.dctr("shim", "--id", "sh1", "state"); theirs != out {
				t.Errorf("state differs from Debian's ctr's:\nours:\n%s\nDebian's:\n%s", out, theirs)
			}
		}

		// An exec without IO runs in the container; its state and delete
		// report its exit.
		out = d.ctr("shim", "--id", "sh1", "exec", "e1", "sh", "-c", "echo shim-exec > /tmp/marker; exit 3")
		mustContain(t, out, "exec running with pid ")
		waitFor(t, func() bool {
			return parseShimState(t, d.ctr("shim", "--id", "sh1", "state", "e1")).Status == statusStopped
		})
		st = parseShimState(t, d.ctr("shim", "--id", "sh1", "state", "e1"))
		if st.ExitStatus != 3 || st.ExitedAt.IsZero() {
			t.Fatalf("exec state %+v, want exit status 3 and a time", st)
		}
		mustContain(t, d.ctr("shim", "--id", "sh1", "delete", "e1"), "exec process e1 deleted and returned exit status 3")
		mustContain(t, d.ctr("t", "exec", "--exec-id", "check", "sh1", "cat", "/tmp/marker"), "shim-exec")
		out, err := d.ctrErr("shim", "--id", "sh1", "state", "e1")
		mustFail(t, out, err, "not found")

		// Attached to FIFOs: both streams come back.
		fifos := t.TempDir()
		out = d.ctr("shim", "--id", "sh1", "exec", "--attach",
			"--stdout", filepath.Join(fifos, "out"), "--stderr", filepath.Join(fifos, "err"),
			"e2", "sh", "-c", "echo to-stdout; echo to-stderr >&2")
		mustContain(t, out, "exec running with pid ", "to-stdout", "to-stderr")
		waitFor(t, func() bool {
			return parseShimState(t, d.ctr("shim", "--id", "sh1", "state", "e2")).Status == statusStopped
		})
		mustContain(t, d.ctr("shim", "--id", "sh1", "delete", "e2"), "returned exit status 0")

		// A --spec process, with --env and --cwd applied to it.
		spec := filepath.Join(t.TempDir(), "process.json")
		os.WriteFile(spec, []byte(`{"args":["sh","-c","echo $GREETING from $(pwd)"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}`), 0o644)
		out = d.ctr("shim", "--id", "sh1", "exec", "-a", "--spec", spec, "--env", "GREETING=hello", "--cwd", "/tmp",
			"--stdout", filepath.Join(fifos, "out3"), "--stderr", filepath.Join(fifos, "err3"), "e3")
		mustContain(t, out, "hello from /tmp")
		waitFor(t, func() bool {
			return parseShimState(t, d.ctr("shim", "--id", "sh1", "state", "e3")).Status == statusStopped
		})
		d.ctr("shim", "--id", "sh1", "delete", "e3")

		// The init process is already started; the shim says so.
		out, err = d.ctrErr("shim", "--id", "sh1", "start")
		mustFail(t, out, err, "shim start")

		// Found through the bundle's address file when the derived socket
		// path is not the shim's: reached through a symlink, the daemon's
		// address is another string.
		link := filepath.Join(t.TempDir(), "state")
		if err := os.Symlink(d.State, link); err != nil {
			t.Fatal(err)
		}
		viaLink := filepath.Join(link, filepath.Base(d.Address))
		out, err = runCmd(filepath.Join(binDir, "ctr"), "--address", viaLink, "shim", "--state", d.State, "--id", "sh1", "state")
		if err != nil || parseShimState(t, out).Pid != pid {
			t.Fatalf("shim state with --state: %v\n%s", err, out)
		}
		out, err = runCmd(filepath.Join(binDir, "ctr"), "--address", viaLink, "shim", "--state", t.TempDir(), "--id", "sh1", "state")
		mustFail(t, out, err, `"sh1"'s shim`, "not found")

		// Namespaces are kept apart.
		d.ctr("-n", "other", "run", "-d", "--rootfs", rootfs, "sh2", "sleep", "1000")
		st = parseShimState(t, d.ctr("-n", "other", "shim", "--id", "sh2", "state"))
		if st.ID != "sh2" || st.Status != statusRunning {
			t.Fatalf("state in namespace other: %+v", st)
		}
		out, err = d.ctrErr("shim", "--id", "sh2", "state")
		mustFail(t, out, err, `"sh2"'s shim in namespace "default"`, "not found")

		// A stopped task's state has its exit.
		d.ctr("t", "kill", "-s", "KILL", "sh1")
		waitFor(t, func() bool {
			return parseShimState(t, d.ctr("shim", "--id", "sh1", "state")).Status == statusStopped
		})
		if st = parseShimState(t, d.ctr("shim", "--id", "sh1", "state")); st.ExitStatus != 137 || st.ExitedAt.IsZero() {
			t.Fatalf("stopped state %+v, want exit status 137", st)
		}
		// Deleting the init process through the shim, as containerd's ctr
		// takes it: the container id as the argument. berthd is not told.
		mustContain(t, d.ctr("shim", "--id", "sh1", "delete", "sh1"), "container deleted and returned exit status 137")
		out, err = d.ctrErr("shim", "--id", "sh1", "state")
		mustFail(t, out, err, "shim state", "not found")
		// berthd's delete then finds the task gone (NotFound, as
		// containerd's) but drops it and tears down its shim and bundle,
		// so the container can be deleted.
		out, err = d.ctrErr("t", "rm", "sh1")
		mustFail(t, out, err, "not found")
		if out := d.ctr("t", "ls", "-q"); strings.Contains(out, "sh1") {
			t.Fatalf("task still listed after its delete: %q", out)
		}
		d.ctr("c", "rm", "sh1")
		assertNoBundles(t, d)
	})
}

// usesContainerdShim tells whether the daemon runs containerd's shim.
func usesContainerdShim(t *testing.T, d *daemon) bool {
	t.Helper()
	data, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(data), "containerd-shim-runc-v2")
}

// `ctr shim` without a shim to talk to, or without what it needs, fails
// saying why.
func TestCtrShimErrors(t *testing.T) {
	d := newDaemon(t, "")
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"shim", "state"}, []string{"container id must be specified"}},
		{[]string{"shim", "--id", "nope", "state"}, []string{`container "nope"'s shim in namespace "default"`, "not found"}},
		{[]string{"shim", "--id", "nope", "delete"}, []string{`"nope"'s shim`, "not found"}},
		{[]string{"shim", "--id", "../x", "state"}, []string{"container id"}},
		{[]string{"shim", "--id", "nope", "exec"}, []string{"exec id must be provided"}},
	} {
		out, err := d.ctrErr(tc.args...)
		mustFail(t, out, err, tc.wants...)
	}

	// A running task, but a bad exec.
	d.ctr("run", "-d", "--rootfs", busyboxRootfs(t), "sh3", "sleep", "1000")
	spec := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(spec, []byte("{not json"), 0o644)
	out, err := d.ctrErr("shim", "--id", "sh3", "exec", "--spec", spec, "e1")
	mustFail(t, out, err, "process spec "+spec)
	out, err = d.ctrErr("shim", "--id", "sh3", "exec", "--spec", filepath.Join(t.TempDir(), "missing.json"), "e1")
	mustFail(t, out, err, "read process spec")
	out, err = d.ctrErr("shim", "--id", "sh3", "state", "no-such-exec")
	mustFail(t, out, err, "shim state", "not found")
}
