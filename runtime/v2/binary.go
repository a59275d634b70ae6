package v2

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/fifo"
	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	shimcmd "github.com/berth-containers/berth/runtime/v2/shim"
	"github.com/berth-containers/berth/runtime/v2/shim/runc"
)

// shimBinary knows how to start a shim for one bundle and how to clean up
// after one that died. The command line and environment are the shim v2
// protocol containerd 1.6 speaks, so its containerd-shim-runc-v2 works here
// and ours works under containerd.
type shimBinary struct {
	path         string // resolved shim binary
	bundle       *Bundle
	address      string // our gRPC address
	ttrpcAddress string // our ttrpc address (events)
	publish      string // this daemon's binary, for -publish-binary
	debug        bool
	spares       *spares // nil: no spare shims
}

func (b *shimBinary) command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	all := []string{"-namespace", b.bundle.Namespace, "-address", b.address, "-publish-binary", b.publish}
	if b.debug {
		all = append(all, "-debug")
	}
	all = append(all, args...)
	cmd := exec.CommandContext(ctx, b.path, all...)
	cmd.Dir = dir
	cmd.Env = b.env()
	// The shim daemonises itself; its start process must not die with us
	// nor receive our terminal's signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// env is the shim's environment: ours plus what the shim protocol sets.
func (b *shimBinary) env() []string {
	return append(shimEnv(b.address, b.ttrpcAddress), "NAMESPACE="+b.bundle.Namespace)
}

// shimEnv is the environment every shim of this daemon gets (a spare's
// whole environment; a task's shim adds its NAMESPACE). One P: a shim is
// idle but for a few calls and its containers' output copies, which one
// core carries at far more than any container writes; with a second P
// each of our shims was ~0.3 MiB larger (measured), and a node has
// hundreds of them.
//
// systemd's NOTIFY_SOCKET and socket-activation variables are the
// daemon's alone: passed on, runc would hand the notify socket into every
// container and `runc start` would wait for the container to say READY=1
// (a `ctr run -d` under the shipped Type=notify unit hung).
func shimEnv(address, ttrpcAddress string) []string {
	return append(runc.EnvWithout(os.Environ(), "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"),
		"GOMAXPROCS=1",
		"TTRPC_ADDRESS="+ttrpcAddress,
		"GRPC_ADDRESS="+address,
	)
}

// OwnShimBinary is the name of our shim. When the configured binary is it,
// the daemon does the work of `shim start` itself (shimcmd.Launch, the code
// that command runs) instead of running it as a process, one Go process
// start less per task; any other shim is started by the protocol.
const OwnShimBinary = "containerd-shim-berth-v2"

// launch starts the serving shim as `shim start` would: in-process for our
// own shim, else by running `shim start`. It returns the shim's address.
func (b *shimBinary) launch(ctx context.Context, opts *anypb.Any) (string, error) {
	if filepath.Base(b.path) != OwnShimBinary {
		return b.runStart(ctx, opts)
	}
	l, err := shimcmd.LaunchWith(ctx, shimcmd.Config{
		Namespace: b.bundle.Namespace, ID: b.bundle.ID, Address: b.address,
		PublishBinary: b.publish, Bundle: b.bundle.Path, Debug: b.debug,
	}, b.path, opts, b.env(), os.Getpid(), b.spares.take(b.path))
	if err != nil {
		return "", fmt.Errorf("start shim %s: %w", b.path, err)
	}
	if l.Cmd != nil {
		// We are its parent: reap it when it exits so no zombie is left.
		// After a daemon restart it is re-parented like any other shim.
		reapChild(l.Cmd)
	}
	return l.Address, nil
}

// reapChild reaps the child cmd started, once it exits, without holding an
// OS thread meanwhile: cmd.Wait blocks one in waitid for the shim's whole
// life (one per running container, ~20-50 KB of the daemon's memory
// each). The child's pidfd is readable once it has exited; Go's poller
// waits for that, and a non-blocking waitid then reaps it. Without
// pidfds (Linux before 5.3) it falls back to cmd.Wait.
func reapChild(cmd *exec.Cmd) {
	fd, err := unix.PidfdOpen(cmd.Process.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		go cmd.Wait()
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		go cmd.Wait()
		return
	}
	go func() {
		defer f.Close()
		rerr := rc.Read(func(pfd uintptr) bool {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PIDFD, int(pfd), &info, unix.WEXITED|unix.WNOHANG, nil)
			// Not exited yet: wait for the pidfd to become readable.
			return !(err == nil && info.Signo == 0) && err != unix.EINTR
		})
		if rerr != nil {
			cmd.Wait()
			return
		}
		// Reaped: let go of what os.Process holds for it.
		cmd.Process.Release()
	}()
}

// runStart runs `shim start` and returns the address it prints.
func (b *shimBinary) runStart(ctx context.Context, opts *anypb.Any) (string, error) {
	cmd := b.command(ctx, b.bundle.Path, "-id", b.bundle.ID, "start")
	if opts != nil {
		data, err := proto.Marshal(opts)
		if err != nil {
			return "", fmt.Errorf("marshal runtime options: %w", err)
		}
		cmd.Stdin = bytes.NewReader(data)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("start shim %s: %s: %w", b.path, strings.TrimSpace(stderr.String()+string(out)), err)
	}
	address := parseStartOutput(out)
	if address == "" {
		return "", fmt.Errorf("start shim %s: printed no address", b.path)
	}
	return address, nil
}

// start runs `shim start`, which prints the ttrpc address of a (possibly
// already running) shim, and connects to it.
func (b *shimBinary) start(ctx context.Context, opts *anypb.Any, onClose func()) (*ttrpc.Client, error) {
	// The shim writes its own log to the "log" FIFO in the bundle; copy it
	// into ours so shim errors reach the journal.
	logCtx, cancelLog := context.WithCancel(context.WithoutCancel(ctx))
	f, err := fifo.OpenFifo(logCtx, filepath.Join(b.bundle.Path, "log"), unix.O_RDWR|unix.O_CREAT|unix.O_NONBLOCK, 0o700)
	if err != nil {
		cancelLog()
		return nil, fmt.Errorf("open shim log fifo: %w", err)
	}
	go copyShimLog(logCtx, b.bundle, f)

	t0 := time.Now()
	address, err := b.launch(ctx, opts)
	tExec := time.Since(t0)
	if err != nil {
		cancelLog()
		f.Close()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.bundle.Path, "shim-binary-path"), []byte(b.path), 0o600); err != nil {
		cancelLog()
		f.Close()
		return nil, fmt.Errorf("record shim binary: %w", err)
	}
	client, err := connectShim(ctx, address, func() {
		cancelLog()
		f.Close()
		if onClose != nil {
			onClose()
		}
	})
	if err != nil {
		cancelLog()
		f.Close()
		return nil, err
	}
	log.G(ctx).WithField("id", b.bundle.ID).WithField("exec", tExec).WithField("connect", time.Since(t0)-tExec).Debug("shim started")
	return client, nil
}

// parseStartOutput accepts containerd 1.6's plain address and the newer
// bootstrap JSON ({"version":2,"address":"unix://…","protocol":"ttrpc"}).
func parseStartOutput(out []byte) string {
	s := strings.TrimSpace(string(out))
	if strings.HasPrefix(s, "{") {
		var bs struct {
			Address string `json:"address"`
		}
		if err := jsonUnmarshal([]byte(s), &bs); err == nil {
			return bs.Address
		}
		return ""
	}
	return s
}

func copyShimLog(ctx context.Context, b *Bundle, f io.ReadCloser) {
	defer f.Close()
	entry := log.G(ctx).WithField("namespace", b.Namespace).WithField("id", b.ID)
	// The buffer lives as long as the shim, one per running task, and
	// shims log a few short lines: 4 KiB, not 32 (28 KiB of the daemon's
	// heap per task; lines longer than the buffer still join in pending).
	buf := make([]byte, 4*1024)
	var pending []byte
	for {
		n, err := f.Read(buf)
		if n > 0 {
			pending = append(pending, buf[:n]...)
			for {
				i := bytes.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				entry.Debug("shim: " + string(pending[:i]))
				pending = pending[i+1:]
			}
		}
		if err != nil {
			return
		}
	}
}

// connectShim dials a shim's ttrpc socket ("unix:///path" or a bare path).
func connectShim(ctx context.Context, address string, onClose func()) (*ttrpc.Client, error) {
	path := strings.TrimPrefix(address, "unix://")
	var (
		conn net.Conn
		err  error
	)
	// The shim may still be binding its socket right after start.
	for i := 0; i < 100; i++ {
		d := net.Dialer{Timeout: 2 * time.Second}
		conn, err = d.DialContext(ctx, "unix", path)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("connect to shim at %s: %w: %w", address, err, errdefs.ErrUnavailable)
	}
	opts := []ttrpc.ClientOpts{}
	if onClose != nil {
		opts = append(opts, ttrpc.WithOnClose(onClose))
	}
	return ttrpc.NewClient(conn, opts...), nil
}

// DeleteResult is the exit of a deleted process (or of a task whose shim died).
type DeleteResult struct {
	Pid        uint32
	ExitStatus uint32
	ExitedAt   time.Time
}

// cleanup runs `shim delete` for a shim that is dead or unreachable, which
// kills and deletes the runc container and unmounts the rootfs. It runs
// outside the bundle (so the bundle can be removed) and names it with -bundle.
func (b *shimBinary) cleanup(ctx context.Context) (*DeleteResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := b.command(ctx, filepath.Dir(b.bundle.Path), "-id", b.bundle.ID, "-bundle", b.bundle.Path, "delete")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("shim delete for %s: %s: %w", b.bundle.ID, strings.TrimSpace(stderr.String()), err)
	}
	return decodeDeleteResponse(out)
}
