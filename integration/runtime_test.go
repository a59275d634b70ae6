package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-containers/berth/cio"
	"github.com/berth-containers/berth/pkg/namespaces"
)

// debianShimConfig points containerd's runc runtime name at Debian's
// containerd-shim-runc-v2, for compatibility runs.
const debianShimConfig = `
[plugins."io.containerd.runtime.v2.task".runtimes."io.containerd.runc.v2"]
  binary = "/usr/bin/containerd-shim-runc-v2"
`

// shims are the shims every runtime test runs with.
var shims = []struct {
	name   string
	config string
}{
	{"berth", ""},
	{"runc-v2", debianShimConfig},
}

var (
	rootfsOnce sync.Once
	rootfsDir  string
)

// busyboxRootfs is a read-only-shared directory with Debian's static
// busybox and its applets, for --rootfs containers.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	requireBinary(t, "/bin/busybox")
	rootfsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-rootfs-")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc", "root"} {
			os.MkdirAll(filepath.Join(dir, d), 0o755)
		}
		data, err := os.ReadFile("/bin/busybox")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755)
		for _, a := range []string{"sh", "echo", "cat", "sleep", "true", "false", "hostname", "ls", "ps", "id", "env", "kill"} {
			os.Symlink("busybox", filepath.Join(dir, "bin", a))
		}
		os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
		rootfsDir = dir
	})
	return rootfsDir
}

// exitCode returns the exit code of a finished command's error.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func forEachShim(t *testing.T, fn func(t *testing.T, d *daemon)) {
	for _, s := range shims {
		s := s
		t.Run(s.name, func(t *testing.T) {
			if s.config != "" {
				requireBinary(t, "/usr/bin/containerd-shim-runc-v2")
			}
			fn(t, newDaemon(t, s.config))
		})
	}
}

func TestRunRootfsExitCodes(t *testing.T) {
	forEachShim(t, func(t *testing.T, d *daemon) {
		rootfs := busyboxRootfs(t)
		out := d.ctr("run", "--rm", "--rootfs", rootfs, "ok", "echo", "hello berth")
		mustContain(t, out, "hello berth")
		out, err := d.ctrErr("run", "--rm", "--rootfs", rootfs, "three", "sh", "-c", "echo out; echo err >&2; exit 3")
		if exitCode(err) != 3 {
			t.Fatalf("exit code %d, want 3: %s", exitCode(err), out)
		}
		mustContain(t, out, "out", "err")
		// An attached run killed from outside reports 128+9.
		done := make(chan error, 1)
		go func() {
			_, err := d.ctrErr("run", "--rm", "--rootfs", rootfs, "killed", "sleep", "1000")
			done <- err
		}()
		waitFor(t, func() bool { return strings.Contains(d.ctr("t", "ls"), "RUNNING") })
		d.ctr("t", "kill", "-s", "KILL", "killed")
		if err := <-done; exitCode(err) != 137 {
			t.Fatalf("exit code %d, want 137", exitCode(err))
		}
		// --rm leaves nothing behind.
		if out := d.ctr("c", "ls", "-q"); strings.TrimSpace(out) != "" {
			t.Fatalf("containers left: %q", out)
		}
		if out := d.ctr("t", "ls", "-q"); strings.TrimSpace(out) != "" {
			t.Fatalf("tasks left: %q", out)
		}
		assertNoBundles(t, d)
	})
}

func assertNoBundles(t *testing.T, d *daemon) {
	t.Helper()
	// A deleted task's shim shutdown and bundle removal finish just after
	// the delete answers; give them a moment, not forever.
	dir := filepath.Join(d.State, "io.containerd.runtime.v2.task", "default")
	var left []os.DirEntry
	mounted := false
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, _ = os.ReadDir(dir)
		data, _ := os.ReadFile("/proc/self/mountinfo")
		mounted = strings.Contains(string(data), d.State+"/")
		if (len(left) == 0 && !mounted) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) != 0 {
		t.Fatalf("bundles left in %s: %v", dir, left)
	}
	if mounted {
		t.Fatalf("mounts left under %s", d.State)
	}
}

// TestTaskRecreatedAtOnce: a task deleted and created again for the same
// container without a pause (the daemon finishes a delete's teardown in
// the background; the next create must wait for it, not trip over the old
// bundle or runc state).
func TestTaskRecreatedAtOnce(t *testing.T) {
	forEachShim(t, func(t *testing.T, d *daemon) {
		d.ctr("c", "create", "--rootfs", busyboxRootfs(t), "again", "true")
		c := loadClient(t, d)
		ctx := namespaces.WithNamespace(context.Background(), "default")
		ct, err := c.LoadContainer(ctx, "again")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			task, err := ct.NewTask(ctx, cio.NullIO)
			if err != nil {
				t.Fatalf("round %d: create: %v", i, err)
			}
			statusC, err := task.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := task.Start(ctx); err != nil {
				t.Fatalf("round %d: start: %v", i, err)
			}
			if code, _, _ := (<-statusC).Result(); code != 0 {
				t.Fatalf("round %d: exit %d", i, code)
			}
			if _, err := task.Delete(ctx); err != nil {
				t.Fatalf("round %d: delete: %v", i, err)
			}
		}
		d.ctr("c", "rm", "again")
		assertNoBundles(t, d)
	})
}

// spareShims lists the spare shims of the daemon at address still waiting
// for a task.
func spareShims(address string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), "\x00-spare\x00-address\x00"+address+"\x00") {
			if st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); !strings.Contains(string(st), ") Z ") {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// TestSpareShim: after a first task the daemon keeps one spare shim ready
// (the next task takes it); it goes with the daemon, on SIGTERM and on
// kill -9 alike. Shims of a daemon logging at debug level log at debug.
func TestSpareShim(t *testing.T) {
	rootfs := busyboxRootfs(t)
	d := newDaemon(t, "")
	if n := len(spareShims(d.Address)); n != 0 {
		t.Fatalf("%d spare shims before any task", n)
	}
	for i := 0; i < 3; i++ {
		d.ctr("run", "--rm", "--rootfs", rootfs, fmt.Sprint("sp", i), "true")
	}
	// The daemon logs at debug level, so its shims run with -debug (as
	// containerd's do), a started one (sp0) and adopted spares alike, and
	// their log reaches the daemon's.
	for _, id := range []string{"sp0", "sp1", "sp2"} {
		want := `runc create\" id=` + id + " "
		waitFor(t, func() bool { return strings.Contains(d.logs.String(), want) })
	}
	waitFor(t, func() bool { return len(spareShims(d.Address)) == 1 })
	d.Stop()
	waitFor(t, func() bool { return len(spareShims(d.Address)) == 0 })
	d.Start()
	d.ctr("run", "--rm", "--rootfs", rootfs, "sp-again", "true")
	waitFor(t, func() bool { return len(spareShims(d.Address)) == 1 })
	d.Kill9()
	waitFor(t, func() bool { return len(spareShims(d.Address)) == 0 })
}

func TestCreateStartExecLifecycle(t *testing.T) {
	forEachShim(t, func(t *testing.T, d *daemon) {
		rootfs := busyboxRootfs(t)
		tmp := t.TempDir()
		d.ctr("c", "create", "--rootfs", rootfs, "web", "sh", "-c", "echo started; sleep 1000")
		pidFile := filepath.Join(tmp, "pid")
		logFile := filepath.Join(tmp, "log")
		d.ctr("t", "start", "-d", "--pid-file", pidFile, "--log-uri", "file://"+logFile, "web")
		mustContain(t, d.ctr("t", "ls"), "web", "RUNNING")
		pid, perr := os.ReadFile(pidFile)
		if perr != nil || strings.TrimSpace(string(pid)) == "" {
			t.Fatalf("pid file: %v %q", perr, pid)
		}
		waitFor(t, func() bool { b, _ := os.ReadFile(logFile); return strings.Contains(string(b), "started") })
		out, err := d.ctrErr("t", "exec", "--exec-id", "e2", "web", "sh", "-c", "echo from-exec; exit 4")
		if exitCode(err) != 4 || !strings.Contains(out, "from-exec") {
			t.Fatalf("exec: code %d out %q", exitCode(err), out)
		}
		mustContain(t, d.ctr("t", "exec", "--exec-id", "e3", "--user", "1234:5678", "web", "id"), "uid=1234", "gid=5678")
		mustContain(t, d.ctr("t", "exec", "--exec-id", "e4", "--user", "root", "web", "id", "-u"), "0")
		mustContain(t, d.ctr("t", "ps", "web"), strings.TrimSpace(string(pid)))
		d.ctr("t", "pause", "web")
		mustContain(t, d.ctr("t", "ls"), "PAUSED")
		d.ctr("t", "resume", "web")
		mustContain(t, d.ctr("t", "ls"), "RUNNING")
		mustContain(t, d.ctr("t", "metrics", "web"), "METRIC")
		// Checkpoint is not implemented: a clear error, the task untouched.
		out, err = d.ctrErr("t", "checkpoint", "--exit", "web")
		mustFail(t, out, err, "not implemented")
		mustContain(t, d.ctr("t", "ls"), "RUNNING")
		// A task started twice, a container deleted under its task.
		out, err = d.ctrErr("t", "start", "-d", "web")
		mustFail(t, out, err, "web")
		out, err = d.ctrErr("c", "rm", "web")
		mustFail(t, out, err, "task")
		d.ctr("t", "kill", "-s", "SIGKILL", "web")
		waitFor(t, func() bool { return strings.Contains(d.ctr("t", "ls"), "STOPPED") })
		out, _ = d.ctrErr("t", "rm", "web")
		mustContain(t, out, "137")
		d.ctr("c", "rm", "web")
		assertNoBundles(t, d)
	})
}

func TestRunNullIOAndDetach(t *testing.T) {
	d := newDaemon(t, "")
	rootfs := busyboxRootfs(t)
	out := d.ctr("run", "--rm", "--null-io", "--rootfs", rootfs, "quiet", "echo", "nothing")
	if strings.Contains(out, "nothing") {
		t.Fatalf("null-io printed output: %q", out)
	}
	d.ctr("run", "-d", "--rootfs", rootfs, "bg", "sleep", "1000")
	mustContain(t, d.ctr("t", "ls"), "bg", "RUNNING")
	d.ctr("t", "rm", "-f", "bg")
	d.ctr("c", "rm", "bg")
}

func TestBadRuntimeInput(t *testing.T) {
	d := newDaemon(t, "")
	rootfs := busyboxRootfs(t)
	out, err := d.ctrErr("run", "--rm", "--runtime", "io.containerd.nosuch.v9", "--rootfs", rootfs, "x1", "true")
	mustFail(t, out, err, "containerd-shim-nosuch-v9")
	out, err = d.ctrErr("run", "--rm", "--rootfs", rootfs, "x2", "/no/such/cmd")
	mustFail(t, out, err, "/no/such/cmd")
	// Said once, in ctr's error: runc's own line on the process's stderr
	// is not copied for a process that was never created.
	if n := strings.Count(out, "runc create failed"); n != 1 {
		t.Fatalf("runc's error shown %d times:\n%s", n, out)
	}
	out, err = d.ctrErr("run", "--rm", "--memory-limit", "-5", "--rootfs", rootfs, "x3", "true")
	mustFail(t, out, err, "memory-limit")
	out, err = d.ctrErr("run", "--rm", "docker.io/library/nosuch:latest", "x4", "true")
	mustFail(t, out, err, "not found")
	if out := d.ctr("c", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("half-made containers left: %q", out)
	}
	if out := d.ctr("t", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("half-made tasks left: %q", out)
	}
	assertNoBundles(t, d)
}

func TestRestartKeepsTasks(t *testing.T) {
	d := newDaemon(t, "")
	rootfs := busyboxRootfs(t)
	const n = 10
	for i := 0; i < n; i++ {
		d.ctr("run", "-d", "--rootfs", rootfs, fmt.Sprintf("r%d", i), "sleep", "1000")
	}
	d.Kill9()
	d.Start()
	out := d.ctr("t", "ls")
	if c := strings.Count(out, "RUNNING"); c != n {
		t.Fatalf("%d RUNNING after restart, want %d:\n%s", c, n, out)
	}
	out, err := d.ctrErr("t", "exec", "--exec-id", "after", "r0", "sh", "-c", "exit 5")
	if exitCode(err) != 5 {
		t.Fatalf("exec after restart: %d %s", exitCode(err), out)
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("r%d", i)
		d.ctr("t", "kill", "-s", "9", id)
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("r%d", i)
		waitFor(t, func() bool { return strings.Contains(d.ctr("t", "ls"), id+" ") && taskStopped(d, id) })
		out, _ := d.ctrErr("t", "rm", id)
		mustContain(t, out, "137")
		d.ctr("c", "rm", id)
	}
	assertNoBundles(t, d)
}

// TestStopKeepsTasks: a graceful stop (SIGTERM, what `systemctl stop`
// sends under KillMode=process) leaves the tasks running and their shims
// serving; the next daemon takes them up again.
func TestStopKeepsTasks(t *testing.T) {
	d := newDaemon(t, "")
	rootfs := busyboxRootfs(t)
	ids := []string{"s0", "s1", "s2"}
	for _, id := range ids {
		d.ctr("run", "-d", "--rootfs", rootfs, id, "sleep", "1000")
	}
	d.Stop()
	for _, id := range ids {
		if shimPid(id) == 0 {
			t.Fatalf("the shim of %s went with the daemon", id)
		}
	}
	d.Start()
	if out := d.ctr("t", "ls"); strings.Count(out, "RUNNING") != len(ids) {
		t.Fatalf("want %d RUNNING after the restart:\n%s", len(ids), out)
	}
	mustContain(t, d.ctr("t", "exec", "--exec-id", "after", "s1", "echo", "still here"), "still here")
	for _, id := range ids {
		d.ctr("t", "kill", "-s", "9", id)
		waitFor(t, func() bool { return taskStopped(d, id) })
		out, _ := d.ctrErr("t", "rm", id)
		mustContain(t, out, "137")
		d.ctr("c", "rm", id)
	}
	assertNoBundles(t, d)
}

func taskStopped(d *daemon, id string) bool {
	for _, line := range strings.Split(d.ctr("t", "ls"), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == id {
			return f[2] == "STOPPED"
		}
	}
	return false
}

func TestShimKilled(t *testing.T) {
	d := newDaemon(t, "")
	rootfs := busyboxRootfs(t)
	var events lockedBuffer
	ev := exec.Command(filepath.Join(binDir, "ctr"), "-a", d.Address, "events")
	ev.Stdout = &events
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { ev.Process.Kill(); ev.Wait() }()
	d.ctr("run", "-d", "--rootfs", rootfs, "victim", "sleep", "1000")
	shimPid := findShimPid(t, "victim")
	syscall.Kill(shimPid, syscall.SIGKILL)
	waitFor(t, func() bool { return taskStopped(d, "victim") })
	waitFor(t, func() bool { return strings.Contains(events.String(), "/tasks/exit") })
	d.ctr("t", "rm", "victim")
	d.ctr("c", "rm", "victim")
	assertNoBundles(t, d)
}

// findShimPid finds the shim process serving container id.
func findShimPid(t *testing.T, id string) int {
	t.Helper()
	if pid := shimPid(id); pid != 0 {
		return pid
	}
	t.Fatalf("no shim found for %s", id)
	return 0
}

// shimPid is the pid of a live shim started for task id, or 0.
func shimPid(id string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.Contains(args[0], "containerd-shim") {
			for i, a := range args {
				if a == "-id" && i+1 < len(args) && args[i+1] == id {
					if st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); !strings.Contains(string(st), ") Z ") {
						return pid
					}
				}
			}
		}
	}
	return 0
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("condition not met within 15s")
}

// An exec's output always arrives, with both shims. With containerd's shim
// ctr once lost it about one time in twenty: waiting for the output, ctr
// abandoned the FIFO opens still pending, and one the kernel had already
// completed but whose goroutine had not run yet went with its output.
func TestExecOutputNeverLost(t *testing.T) {
	forEachShim(t, func(t *testing.T, d *daemon) {
		d.ctr("run", "-d", "--rootfs", busyboxRootfs(t), "host", "sleep", "1000")
		for i := 0; i < 60; i++ {
			if out := d.ctr("t", "exec", "--exec-id", fmt.Sprint("e", i), "host", "echo", "out"); out != "out\n" {
				t.Fatalf("exec %d printed %q, want %q", i, out, "out\n")
			}
		}
		d.ctr("t", "rm", "-f", "host")
		d.ctr("c", "rm", "host")
	})
}

// `ctr t update` changes a running task's cgroup limits, from flags and
// from a resources document, with both shims; bad values are refused
// before they reach the daemon.
func TestTaskUpdate(t *testing.T) {
	forEachShim(t, func(t *testing.T, d *daemon) {
		d.ctr("run", "-d", "--rootfs", busyboxRootfs(t), "upd", "sleep", "1000")
		defer func() {
			d.ctr("t", "rm", "-f", "upd")
			d.ctr("c", "rm", "upd")
		}()
		var pid string // from the one task's row of `t ls`: TASK PID STATUS
		for _, f := range strings.Fields(d.ctr("t", "ls")) {
			if _, err := strconv.Atoi(f); err == nil {
				pid = f
			}
		}
		cgroupFile := func(controller, file string) string {
			b, err := os.ReadFile("/proc/" + pid + "/cgroup")
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				parts := strings.SplitN(line, ":", 3)
				if len(parts) == 3 && strings.Contains(","+parts[1]+",", ","+controller+",") {
					v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parts[1], parts[2], file))
					if err != nil {
						t.Fatal(err)
					}
					return strings.TrimSpace(string(v))
				}
			}
			t.Fatalf("task %s has no %s cgroup:\n%s", pid, controller, b)
			return ""
		}
		d.ctr("t", "update", "--memory-limit", "67108864", "upd")
		if got := cgroupFile("memory", "memory.limit_in_bytes"); got != "67108864" {
			t.Fatalf("memory limit %s after update", got)
		}
		res := filepath.Join(t.TempDir(), "res.json")
		os.WriteFile(res, []byte(`{"pids":{"limit":42}}`), 0o644)
		d.ctr("t", "update", "--resources", res, "upd")
		if got := cgroupFile("pids", "pids.max"); got != "42" {
			t.Fatalf("pids limit %s after update", got)
		}
		out, err := d.ctrErr("t", "update", "--memory-limit", "-1", "upd")
		mustFail(t, out, err, "invalid --memory-limit")
	})
}

// berthd holds no OS thread per running shim: it reaps the shims it starts
// through their pidfds, not a thread blocked in wait each.
func TestNoThreadPerShim(t *testing.T) {
	d := newDaemon(t, "")
	rootfs := busyboxRootfs(t)
	threads := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", d.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	d.ctr("run", "--rm", "--rootfs", rootfs, "warm", "true")
	before := threads()
	for i := 0; i < 12; i++ {
		d.ctr("run", "-d", "--rootfs", rootfs, fmt.Sprint("th", i), "sleep", "1000")
	}
	if after := threads(); after-before >= 6 {
		t.Fatalf("berthd went from %d to %d threads for 12 running shims", before, after)
	}
	for i := 0; i < 12; i++ {
		d.ctr("t", "rm", "-f", fmt.Sprint("th", i))
		d.ctr("c", "rm", fmt.Sprint("th", i))
	}
	// Shims exit once their task is deleted, and are reaped: no zombies.
	waitFor(t, func() bool {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if f := strings.Fields(string(st)); len(f) > 3 && f[2] == "Z" && f[3] == strconv.Itoa(d.cmd.Process.Pid) {
				return false
			}
		}
		return true
	})
}

// TestNamespaceCgroupRemoved: tasks leave their namespace's cgroup (/NS
// in every hierarchy) behind when they go; `ctr ns rm --cgroup` removes
// it with the namespace, and says so when it cannot.
func TestNamespaceCgroupRemoved(t *testing.T) {
	d := newDaemon(t, "")
	rootfs := busyboxRootfs(t)
	// cgroups are the host's: names no other daemon or run uses.
	ns := fmt.Sprintf("cgns-%d", time.Now().UnixNano())
	stray := fmt.Sprintf("cgstray-%d", time.Now().UnixNano())
	nsCgroups := func(name string) []string {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
		if fi, err := os.Stat("/sys/fs/cgroup/" + name); err == nil && fi.IsDir() {
			dirs = append(dirs, "/sys/fs/cgroup/"+name)
		}
		return dirs
	}
	t.Cleanup(func() {
		for _, name := range []string{ns, stray} {
			for _, dir := range nsCgroups(name) {
				os.Remove(filepath.Join(dir, "child"))
				os.Remove(dir)
			}
		}
	})
	d.ctr("-n", ns, "run", "-d", "--rootfs", rootfs, "c1", "sleep", "1000")
	if len(nsCgroups(ns)) == 0 {
		t.Fatalf("no cgroup /%s while its task runs", ns)
	}
	// Not empty: nothing is removed.
	out, err := d.ctrErr("-n", ns, "ns", "rm", "--cgroup", ns)
	mustFail(t, out, err, ns)
	if len(nsCgroups(ns)) == 0 {
		t.Fatal("a namespace that could not be removed lost its cgroup")
	}
	d.ctr("-n", ns, "t", "rm", "-f", "c1")
	d.ctr("-n", ns, "c", "rm", "c1")
	left := nsCgroups(ns)
	if len(left) == 0 {
		t.Fatalf("the task took its namespace's cgroup with it; nothing to test")
	}
	mustContain(t, d.ctr("ns", "rm", "-c", ns), ns)
	if left := nsCgroups(ns); len(left) != 0 {
		t.Fatalf("cgroups left after ns rm --cgroup: %v", left)
	}
	if out := d.ctr("ns", "ls", "-q"); strings.Contains(out, ns) {
		t.Fatalf("namespace %s still listed:\n%s", ns, out)
	}

	// A namespace cgroup someone put a child cgroup in: the namespace
	// goes, ctr says the cgroup could not, and exits 1.
	d.ctr("ns", "create", stray)
	dir := filepath.Join(left[0][:strings.LastIndex(left[0], "/")], stray)
	if err := os.MkdirAll(filepath.Join(dir, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = d.ctrErr("ns", "rm", "--cgroup", stray)
	mustFail(t, out, err, "namespace "+stray+" removed, its cgroup not", dir)
	if out := d.ctr("ns", "ls", "-q"); strings.Contains(out, stray) {
		t.Fatalf("namespace %s still listed:\n%s", stray, out)
	}
}
