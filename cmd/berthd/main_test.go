package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as berthd: run with this variable set, it is the
// daemon, so signals and sd_notify are tested on a real process.
const beDaemon = "BERTHD_TEST_BE_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(beDaemon) == "1" {
		os.Args = append([]string{"berthd"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe to read while the child writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestDaemonLifecycle(t *testing.T) {
	dir := t.TempDir()
	notifyPath := filepath.Join(dir, "notify.sock")
	nconn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nconn.Close()
	address := filepath.Join(dir, "s", "b.sock")

	cmd := exec.Command(os.Args[0], "--config", filepath.Join(dir, "missing.toml"),
		"--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "s"),
		"--address", address, "--log-format", "json")
	cmd.Env = append(os.Environ(), beDaemon+"=1", "NOTIFY_SOCKET="+notifyPath)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
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

	readNotify := func() string {
		nconn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 128)
		n, err := nconn.Read(buf)
		if err != nil {
			t.Fatalf("sd_notify: %v", err)
		}
		return string(buf[:n])
	}
	if got := readNotify(); got != "READY=1" {
		t.Fatalf("first notify %q", got)
	}
	for _, p := range []string{address, address + ".ttrpc"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("socket: %v", err)
		}
	}
	if !strings.Contains(logs.String(), `"level":"info"`) {
		t.Errorf("logs are not JSON: %s", logs.String())
	}

	cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, "stack dump", func() bool { return strings.Contains(logs.String(), "goroutine stack dump") })
	// SIGPIPE must not kill it.
	cmd.Process.Signal(syscall.SIGPIPE)

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	if got := readNotify(); got != "STOPPING=1" {
		t.Fatalf("stop notify %q", got)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("berthd did not exit after SIGTERM")
	}
	t.Logf("stopped in %v", time.Since(start))
	if _, err := os.Stat(address); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestConfigDefaultCommand(t *testing.T) {
	out, err := runSelf(t, "config", "default")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "version = 2") || !strings.Contains(out, "[grpc]") {
		t.Fatalf("config default:\n%s", out)
	}
	out, err = runSelf(t, "--root", "/srv/b", "--address", "/tmp/x.sock", "config", "dump")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "root = '/srv/b'") || !strings.Contains(out, "address = '/tmp/x.sock'") {
		t.Fatalf("config dump:\n%s", out)
	}
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--root", "relative", "--state", dir},
		{"--root", dir + "/r", "--state", dir + "/s", "--log-format", "xml"},
		{"--root", dir + "/r", "--state", dir + "/s", "--log-level", "loud"},
	} {
		out, err := runSelf(t, append([]string{"--config", "/nonexistent"}, args...)...)
		if err == nil {
			t.Errorf("%v: no error\n%s", args, out)
		}
	}
}

func runSelf(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), beDaemon+"=1", "NOTIFY_SOCKET=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		return out.String(), fmt.Errorf("timed out")
	}
}
