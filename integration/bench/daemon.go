package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon is one container daemon under test with the ctr that drives it.
type daemon struct {
	name    string // "berth" or "containerd"
	ctrBin  string
	address string
	root    string
	state   string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// ctr runs the daemon's ctr in the bench namespace and returns its output.
func (d *daemon) ctr(ctx context.Context, args ...string) (string, error) {
	all := append([]string{"--address", d.address, "--namespace", benchNamespace}, args...)
	cmd := exec.CommandContext(ctx, d.ctrBin, all...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %s %s: %w: %s", d.name, filepath.Base(d.ctrBin), strings.Join(args, " "), err, strings.TrimSpace(lastLines(out.String(), 5)))
	}
	return out.String(), nil
}

// timed runs ctr and returns how long it took.
func (d *daemon) timed(ctx context.Context, args ...string) (float64, error) {
	start := time.Now()
	_, err := d.ctr(ctx, args...)
	return time.Since(start).Seconds(), err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// start runs the daemon binary with args and waits until ctr version works.
func (d *daemon) start(ctx context.Context, bin string, args []string, env []string) error {
	logf, err := os.Create(d.logPath)
	if err != nil {
		return fmt.Errorf("%s log: %w", d.name, err)
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Env = env
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	d.exited = make(chan struct{})
	go func() { d.cmd.Wait(); logf.Close(); close(d.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := d.ctr(ctx, "version"); err == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("%s exited at start; log %s:\n%s", d.name, d.logPath, tail(d.logPath))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer within 20s; log %s:\n%s", d.name, d.logPath, tail(d.logPath))
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	return lastLines(string(data), 20)
}

// stop asks the daemon to stop and kills it after a grace period.
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

// rss is the daemon process's resident memory in bytes.
func (d *daemon) rss() (float64, error) {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0, errors.New("not running")
	}
	return pidRSS(d.cmd.Process.Pid)
}

func pidRSS(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	b, err := parseVmRSS(string(data))
	return float64(b), err
}

// shimPids lists the long-running shims started for this daemon: their
// command line names its socket after -address (the short-lived "start"
// and "delete" invocations are left out).
func (d *daemon) shimPids() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(data) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if !strings.HasPrefix(filepath.Base(argv[0]), "containerd-shim") {
			continue
		}
		if last := argv[len(argv)-1]; last == "start" || last == "delete" {
			continue
		}
		for i := 0; i+1 < len(argv); i++ {
			if argv[i] == "-address" && argv[i+1] == d.address {
				pids = append(pids, pid)
				break
			}
		}
	}
	sort.Ints(pids)
	return pids
}

// busyShimPids is shimPids less a spare shim still waiting for a task
// (berthd keeps one started ahead of need): what settle waits to exit.
func (d *daemon) busyShimPids() []int {
	var busy []int
	for _, pid := range d.shimPids() {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "cwd"))
		if strings.Contains(string(cmdline), "\x00-spare\x00") && cwd == "/" {
			continue
		}
		busy = append(busy, pid)
	}
	return busy
}

// killShims kills every shim of this daemon (cleanup after a failure).
func (d *daemon) killShims() {
	for _, pid := range d.shimPids() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// removeAll force-deletes every task and container in the bench
// namespace, several at a time.
func (d *daemon) removeAll(ctx context.Context) error {
	out, err := d.ctr(ctx, "tasks", "ls", "-q")
	if err != nil {
		return err
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		if err := parallel(ctx, chunk(ids, 10), 4, func(ids []string) error {
			_, err := d.ctr(ctx, append([]string{"tasks", "rm", "-f"}, ids...)...)
			return err
		}); err != nil {
			return err
		}
	}
	out, err = d.ctr(ctx, "containers", "ls", "-q")
	if err != nil {
		return err
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		return parallel(ctx, chunk(ids, 50), 4, func(ids []string) error {
			_, err := d.ctr(ctx, append([]string{"containers", "rm"}, ids...)...)
			return err
		})
	}
	return nil
}

func chunk(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) > n {
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

// parallel runs fn on every item with at most width at once and returns
// the first error.
func parallel[T any](ctx context.Context, items []T, width int, fn func(T) error) error {
	sem := make(chan struct{}, width)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(it T) {
			defer func() { <-sem; wg.Done() }()
			if err := fn(it); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}(it)
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// unmountUnder unmounts everything below dir, deepest first.
func unmountUnder(dir string) {
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
	sort.Sort(sort.Reverse(sort.StringSlice(targets)))
	for _, t := range targets {
		syscall.Unmount(t, syscall.MNT_DETACH)
	}
}
