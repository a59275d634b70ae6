package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// registry is Debian's docker-registry (distribution 2.8) serving a temp
// directory on a loopback port: the remote both daemons pull from.
type registry struct {
	host    string // 127.0.0.1:port
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startRegistry runs bin with a config and storage under dir. The port is
// picked free and then bound by the registry, so another process may take
// it in between: a registry that does not come up is retried on a new one.
func startRegistry(ctx context.Context, bin, dir string) (*registry, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &registry{logPath: filepath.Join(dir, "registry.log")}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		r.host = "127.0.0.1:" + strconv.Itoa(port)
		conf := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: berth-bench
`, filepath.Join(dir, "data"), r.host)
		confFile := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		logf, err := os.Create(r.logPath)
		if err != nil {
			return nil, fmt.Errorf("registry log: %w", err)
		}
		r.cmd = exec.Command(bin, "serve", confFile)
		r.cmd.Stdout, r.cmd.Stderr = logf, logf
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := r.cmd.Start(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		r.exited = make(chan struct{})
		go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); logf.Close(); close(exited) }(r.cmd, r.exited)
		if r.waitReady(ctx) {
			return r, nil
		}
		r.stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if attempt == 2 {
			return nil, fmt.Errorf("docker-registry did not start on %s; log %s:\n%s", r.host, r.logPath, tail(r.logPath))
		}
	}
}

// waitReady polls /v2/ until the registry answers.
func (r *registry) waitReady(ctx context.Context) bool {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-r.exited:
			return false
		default:
		}
		if resp, err := c.Get("http://" + r.host + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// stop terminates the registry, killing it after a grace period. Safe to
// call more than once and on a registry that never started.
func (r *registry) stop() {
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
