package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/namespaces"
	"golang.org/x/sys/unix"
)

// A spare shim is a serving shim started before there is a task for it:
// its Go runtime and packages are initialised and its code is paged in, so
// the task that takes it skips the exec and the start-up of a new process
// (a few milliseconds of every `ctr run`). berthd keeps one ready for its
// own shim binary and hands it a task's configuration and listening socket
// over a unix socket; from then on it is exactly the shim that `start`
// would have launched for that task.
//
// The spare's end of the socket is its fd 3. It reads one message: the
// Config as JSON, with the task's listening socket attached (SCM_RIGHTS).
// If the daemon goes away first (EOF), the spare exits.

// SpareFlag is the command-line flag that makes the shim binary a spare.
const SpareFlag = "-spare"

// spareMsgMax bounds the adoption message (a Config as JSON).
const spareMsgMax = 64 << 10

// ServeSpare waits for a task on fd 3, then serves it.
func ServeSpare(ctx context.Context) error {
	debug.SetGCPercent(40)
	signal.Ignore(unix.SIGPIPE)
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM, unix.SIGINT)
	warmUp()

	cfg, l, err := awaitTask(3)
	if err != nil {
		return err
	}
	if cfg == nil {
		return nil // the daemon went away: nothing to do
	}
	if err := os.Chdir(cfg.Bundle); err != nil {
		l.Close()
		return fmt.Errorf("spare: enter bundle: %w", err)
	}
	setCmdline([]string{os.Args[0], "-namespace", cfg.Namespace, "-id", cfg.ID, "-address", cfg.Address})
	// What `start` would have put in a new shim's environment.
	os.Setenv("NAMESPACE", cfg.Namespace)
	ctx = namespaces.WithNamespace(ctx, cfg.Namespace)
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("runtime", "io.containerd.berth.v2").WithField("namespace", cfg.Namespace))
	return serve(ctx, *cfg, l, term)
}

// warmUp does, while the spare waits, the one-time work the task's first
// process start would otherwise do on its critical path: Go's os package
// probes pidfd support once per process before its first exec, forking a
// throwaway child (~0.3-1 ms between a task's Create and runc's start).
func warmUp() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Release()
	}
}

// awaitTask reads the adoption message from fd. A nil Config means the
// other end closed without sending one.
func awaitTask(fd int) (*Config, net.Listener, error) {
	buf := make([]byte, spareMsgMax)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	unix.Close(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("spare: read task: %w", err)
	}
	if n == 0 && oobn == 0 {
		return nil, nil, nil
	}
	var lfd = -1
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if fds, err := unix.ParseUnixRights(&m); err == nil {
				for _, f := range fds {
					if lfd == -1 {
						lfd = f
					} else {
						unix.Close(f)
					}
				}
			}
		}
	}
	if lfd == -1 {
		return nil, nil, errors.New("spare: task message carries no socket")
	}
	f := os.NewFile(uintptr(lfd), "shim-socket")
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("spare: task socket: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(buf[:n], &cfg); err != nil || cfg.Namespace == "" || cfg.ID == "" || cfg.Bundle == "" {
		l.Close()
		return nil, nil, fmt.Errorf("spare: bad task message %q: %v", buf[:n], err)
	}
	return &cfg, l, nil
}

// Spare is the daemon's handle on a spare shim it started.
type Spare struct {
	Cmd  *exec.Cmd
	conn *os.File // our end of the socket to the spare
}

// StartSpare starts bin as a spare shim with env. address (the daemon's)
// is on its command line so that tools that find a daemon's shims by it
// (and clean-ups after a failed test) find the spare too.
func StartSpare(bin, address string, env []string) (*Spare, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("spare shim: socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "spare"), os.NewFile(uintptr(fds[1]), "spare-shim")
	defer theirs.Close()
	// The padding is room for the task's command line (see setCmdline).
	cmd := exec.Command(bin, SpareFlag, "-address", address, titlePadding)
	cmd.Dir = "/"
	cmd.Env = env
	cmd.ExtraFiles = []*os.File{theirs}
	// As for any shim: a session of its own, so it outlives the daemon
	// once it serves a task and ignores the daemon's terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, fmt.Errorf("spare shim: %w", err)
	}
	return &Spare{Cmd: cmd, conn: ours}, nil
}

// adopt hands the spare its task. On error the spare is not serving it
// (it died, or was told nothing usable) and the caller starts a shim the
// usual way.
func (s *Spare) adopt(cfg Config, listener *os.File) error {
	msg, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	defer s.conn.Close()
	if err := unix.Sendmsg(int(s.conn.Fd()), msg, unix.UnixRights(int(listener.Fd())), nil, unix.MSG_NOSIGNAL); err != nil {
		return fmt.Errorf("hand task to spare shim %d: %w", s.Cmd.Process.Pid, err)
	}
	return nil
}

// Discard lets an unused spare go: it sees EOF and exits; Discard reaps it.
func (s *Spare) Discard() {
	s.conn.Close()
	s.Cmd.Wait()
}
