package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/metrics"
)

// newDebugDaemon starts berthd with its debug socket (pprof, metrics) on
// and returns the daemon and the socket's path.
func newDebugDaemon(t *testing.T) (*daemon, string) {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "bdbg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "debug.sock")
	return newDaemon(t, fmt.Sprintf("[debug]\naddress = %q\n", sock)), sock
}

// debugGet fetches path over the debug socket.
func debugGet(t *testing.T, sock, path string) string {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://berthd" + path)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, sock, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", path, resp.Status, err, body)
	}
	return string(body)
}

// scrape reads and parses /v1/metrics.
func scrape(t *testing.T, sock string) []metrics.Family {
	t.Helper()
	body := debugGet(t, sock, "/v1/metrics")
	fams, err := metrics.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, body)
	}
	return fams
}

// metricValue sums the samples called name (a family or a histogram's
// _count/_sum/_bucket) whose labels match.
func metricValue(fams []metrics.Family, family, sample string, match ...string) float64 {
	return metrics.Find(fams, family).Sum(sample, match...)
}

var goroutineTotalRe = regexp.MustCompile(`goroutine profile: total (\d+)`)

// goroutines is the daemon's goroutine count from pprof.
func goroutines(t *testing.T, sock string) int {
	t.Helper()
	body := debugGet(t, sock, "/debug/pprof/goroutine?debug=1")
	m := goroutineTotalRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no goroutine total in:\n%.300s", body)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// settleGoroutines waits until the count is back within slack of baseline
// and returns the last count seen.
func settleGoroutines(t *testing.T, sock string, baseline, slack int) int {
	t.Helper()
	var n int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n = goroutines(t, sock); n <= baseline+slack {
			return n
		}
	}
	t.Fatalf("goroutines did not return near baseline %d (+%d): %d now\n%s", baseline, slack, n,
		debugGet(t, sock, "/debug/pprof/goroutine?debug=1"))
	return n
}

// TestNodeSdNotify: berthd tells a NOTIFY_SOCKET it is ready once it
// serves, and that it is stopping on SIGTERM.
func TestNodeSdNotify(t *testing.T) {
	dir := t.TempDir()
	state, err := os.MkdirTemp("/run", "bn-")
	if err != nil {
		t.Fatal(err)
	}
	address := filepath.Join(state, "b.sock")
	defer cleanupState(state, address)
	notifyPath := filepath.Join(state, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var logs lockedBuffer
	cmd := exec.Command(filepath.Join(binDir, "berthd"), "--config", filepath.Join(dir, "none.toml"),
		"--root", filepath.Join(dir, "root"), "--state", state, "--address", address)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("berthd logs:\n%s", logs.String())
		}
	}()
	read := func() string {
		conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		buf := make([]byte, 256)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read sd_notify: %v", err)
		}
		return string(buf[:n])
	}
	if got := read(); !strings.Contains(got, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	// Ready means serving: a client gets an answer right away.
	ctr := func(args ...string) string {
		t.Helper()
		out, err := runCmdTimeout(20*time.Second, filepath.Join(binDir, "ctr"), append([]string{"--address", address}, args...)...)
		if err != nil {
			t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	ctr("version")
	// The notify socket is the daemon's: its containers neither see it nor
	// make `runc start` wait for their READY=1 (a detached run hung so).
	rootfs := busyboxRootfs(t)
	ctr("run", "-d", "--rootfs", rootfs, "sd1", "sleep", "30")
	if out := ctr("run", "--rm", "--rootfs", rootfs, "sd2", "env"); strings.Contains(out, "NOTIFY_SOCKET") {
		t.Fatalf("the container's environment has NOTIFY_SOCKET:\n%s", out)
	}
	ctr("t", "kill", "-s", "SIGKILL", "sd1")
	waitFor(t, func() bool { return strings.Contains(ctr("t", "ls"), "STOPPED") })
	ctr("t", "rm", "sd1")
	ctr("c", "rm", "sd1")
	cmd.Process.Signal(syscall.SIGTERM)
	if got := read(); !strings.Contains(got, "STOPPING=1") {
		t.Fatalf("notification after SIGTERM %q, want STOPPING=1", got)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("berthd exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("berthd did not exit after SIGTERM")
	}
}

// TestNodeMetrics scrapes /v1/metrics on the debug socket after some calls
// and a running task.
func TestNodeMetrics(t *testing.T) {
	d, sock := newDebugDaemon(t)
	rootfs := busyboxRootfs(t)
	d.ctr("version")
	d.ctr("c", "create", "--rootfs", rootfs, "rec", "sh")
	d.ctr("c", "rm", "rec")
	if out, err := d.ctrErr("c", "rm", "nosuch"); err == nil {
		t.Fatalf("removing a missing container succeeded: %s", out)
	}

	fams := scrape(t, sock)
	for _, tc := range []struct {
		method, code string
	}{
		{"/containerd.services.version.v1.Version/Version", "OK"},
		{"/containerd.services.containers.v1.Containers/Create", "OK"},
		{"/containerd.services.containers.v1.Containers/Delete", "OK"},
	} {
		if got := metricValue(fams, "berth_grpc_server_handled_total", "berth_grpc_server_handled_total", "method", tc.method, "code", tc.code); got < 1 {
			t.Errorf("%s %s counted %v times", tc.method, tc.code, got)
		}
	}
	// ctr looks the container up first; whichever call said NotFound counts.
	if got := metricValue(fams, "berth_grpc_server_handled_total", "berth_grpc_server_handled_total", "code", "NotFound"); got < 1 {
		t.Errorf("no NotFound call counted")
	}
	if got := metricValue(fams, "berth_grpc_server_handling_seconds", "berth_grpc_server_handling_seconds_count",
		"method", "/containerd.services.containers.v1.Containers/Create"); got < 1 {
		t.Errorf("no latency recorded for Create: %v", got)
	}
	for _, name := range []string{"berth_tasks_running", "berth_shims", "berth_snapshots", "berth_content_bytes",
		"berth_gc_runs_total", "berth_gc_freed_objects_total", "berth_task_operation_seconds", "process_resident_memory_bytes"} {
		if metrics.Find(fams, name) == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	if got := metricValue(fams, "berth_tasks_running", "berth_tasks_running"); got != 0 {
		t.Errorf("tasks running before any task: %v", got)
	}
	if got := metricValue(fams, "berth_snapshots", "berth_snapshots", "snapshotter", "overlayfs"); got != 0 ||
		len(metrics.Find(fams, "berth_snapshots").Samples) == 0 {
		t.Errorf("overlayfs snapshots: %v in %+v", got, metrics.Find(fams, "berth_snapshots"))
	}

	// A running task shows as a task, a shim and a start latency.
	d.ctr("run", "-d", "--rootfs", rootfs, "sleeper", "sleep", "1000")
	fams = scrape(t, sock)
	if got := metricValue(fams, "berth_tasks_running", "berth_tasks_running"); got != 1 {
		t.Errorf("tasks running = %v, want 1", got)
	}
	if got := metricValue(fams, "berth_shims", "berth_shims", "what", "count"); got != 1 {
		t.Errorf("shims = %v, want 1", got)
	}
	if got := metricValue(fams, "berth_shims", "berth_shims", "what", "rss_bytes"); got <= 0 {
		t.Errorf("shim rss = %v", got)
	}
	if got := metricValue(fams, "berth_task_operation_seconds", "berth_task_operation_seconds_count", "op", "start"); got != 1 {
		t.Errorf("task starts timed = %v, want 1", got)
	}
	d.ctr("t", "kill", "-s", "KILL", "sleeper")
	waitFor(t, func() bool { return taskStopped(d, "sleeper") })
	d.ctr("t", "rm", "sleeper")
	d.ctr("c", "rm", "sleeper")
	waitFor(t, func() bool {
		f := scrape(t, sock)
		return metricValue(f, "berth_tasks_running", "berth_tasks_running") == 0 &&
			metricValue(f, "berth_shims", "berth_shims", "what", "count") == 0
	})
	// pprof still answers beside the metrics.
	mustContain(t, debugGet(t, sock, "/debug/pprof/"), "goroutine")
}

// TestNodeCheck runs berthd check on this machine, which CI provisions
// fully: overlayfs and runc must be ok.
func TestNodeCheck(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	out, err := runCmd(filepath.Join(binDir, "berthd"), "--config", "/nonexistent.toml", "--root", root, "check")
	t.Logf("berthd check:\n%s", out)
	mustContain(t, out, "ok: overlayfs mount", "ok: runc version", "ok: kernel", "ok: shim ")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !regexp.MustCompile(`^(ok|warn|fail): .+`).MatchString(line) {
			t.Errorf("line %q is not ok|warn|fail: …", line)
		}
	}
	if hasFail := strings.Contains("\n"+out, "\nfail: "); hasFail != (err != nil) {
		t.Errorf("exit %v but fail lines %v", err, hasFail)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("check created the root %s: %v", root, err)
	}
	out, err = runCmd(filepath.Join(binDir, "berthd"), "--config", "/nonexistent.toml", "--root", root, "check", "--json")
	mustContain(t, out, `"name": "overlayfs"`, `"status": "ok"`, `"config": {`)
	if strings.Contains(out, `"status": "fail"`) != (err != nil) {
		t.Errorf("json: exit %v:\n%s", err, out)
	}
}

// TestSystemdUnitVerifies checks the unit `make install` ships with
// systemd's own verifier, pointed at the binary this run built.
func TestSystemdUnitVerifies(t *testing.T) {
	requireBinary(t, "systemd-analyze")
	data, err := os.ReadFile(filepath.Join(repoDir, "contrib", "systemd", "berthd.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(data), "/usr/local/bin/berthd", filepath.Join(binDir, "berthd"))
	for _, want := range []string{"Type=notify", "KillMode=process", "Delegate=yes", "Restart=always"} {
		mustContain(t, unit, want)
	}
	path := filepath.Join(t.TempDir(), "berthd.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd("systemd-analyze", "verify", path); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
