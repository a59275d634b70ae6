package shim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/runtime/v2/shim/reaper"
	"github.com/berth-containers/berth/runtime/v2/shim/service"
	"github.com/containerd/ttrpc"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Serve is the long-running shim: it serves the task API on its socket
// until the daemon shuts it down (or SIGTERM/SIGINT), reaping every child.
func Serve(ctx context.Context, cfg Config) error {
	if cfg.Namespace == "" {
		return errors.New("serve: -namespace is required")
	}
	// A shim is mostly idle; keep its heap small.
	debug.SetGCPercent(40)
	// Writes to the log FIFO of a daemon that went away must fail with
	// EPIPE, not kill us.
	signal.Ignore(unix.SIGPIPE)
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM, unix.SIGINT)

	l, err := serveListener(cfg.Socket)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, l, term)
}

// serve is Serve once the listening socket is known (from fd 3 or -socket,
// or handed to a spare shim by the daemon).
func serve(ctx context.Context, cfg Config, l net.Listener, term <-chan os.Signal) error {
	defer l.Close()
	bundle, err := cfg.bundle()
	if err != nil {
		return err
	}
	setupLog(bundle, cfg)
	if err := reaper.SetSubreaper(); err != nil {
		return err
	}
	// The socket's path comes from the listener now: by the time we exit
	// the daemon may have removed the bundle and its address file.
	socket := l.Addr().String()

	events := os.Getenv("TTRPC_ADDRESS")
	if events == "" && cfg.Address != "" {
		events = cfg.Address + ".ttrpc"
	}
	pub := service.NewRemotePublisher(events)
	done := make(chan struct{})
	var once, unlinkOnce sync.Once
	// The socket's path goes before anything else of the shutdown (and,
	// for a Shutdown call, before its reply, as containerd's shim does):
	// the path is the same for the next shim of this container id, which
	// the daemon may start the moment we answer. Removed later, it was the
	// next shim's path that went; still there, the next start found it in
	// use, connected to this shim about to exit and handed it the task.
	unlink := func() { unlinkOnce.Do(func() { os.Remove(socket) }) }
	shutdown := func() {
		once.Do(func() {
			unlink()
			close(done)
		})
	}
	svc := service.New(cfg.Namespace, pub, shutdown)
	server, err := ttrpc.NewServer()
	if err != nil {
		return fmt.Errorf("serve: ttrpc server: %w", err)
	}
	taskapi.RegisterTaskService(server, svc)
	go func() {
		if err := server.Serve(ctx, l); err != nil && !errors.Is(err, ttrpc.ErrServerClosed) &&
			!strings.Contains(err.Error(), "use of closed network connection") {
			log.G(ctx).WithError(err).Error("serve ttrpc")
			shutdown()
		}
	}()

	select {
	case <-done:
	case s := <-term:
		unlink()
		log.G(ctx).WithField("signal", s).Info("shim exiting on signal")
	}
	// Let the reply to Shutdown go out before the connections close.
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	server.Shutdown(sctx)
	cancel()
	server.Close()
	pub.Close(5 * time.Second)
	svc.Close()
	return nil
}

// serveListener is the socket `start` handed over as fd 3, or -socket.
func serveListener(socket string) (net.Listener, error) {
	if socket != "" {
		path := socketPath(socket)
		os.Remove(path)
		if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
			return nil, fmt.Errorf("serve: create socket dir: %w", err)
		}
		// ListenUnix, not Listen: no address resolution (and no resolver
		// linked in).
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			return nil, fmt.Errorf("serve: listen %s: %w", path, err)
		}
		return l, nil
	}
	f := os.NewFile(3, "shim-socket")
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("serve: socket on fd 3: %w", err)
	}
	return l, nil
}

// setupLog sends the log (and, through fd 2, any panic) to the bundle's log
// FIFO when the daemon reads it, else leaves it on stderr.
func setupLog(bundle string, cfg Config) {
	logrus.SetFormatter(&logrus.TextFormatter{TimestampFormat: time.RFC3339Nano, FullTimestamp: true})
	if cfg.Debug {
		logrus.SetLevel(logrus.DebugLevel)
	}
	path := filepath.Join(bundle, LogFifo)
	// Non-blocking first: it fails unless a reader is there, where a
	// blocking open would wait for one forever.
	probe, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	// Then a blocking descriptor: fd 2 must block like a normal stderr.
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	unix.Close(probe)
	if err != nil {
		return
	}
	if err := unix.Dup3(fd, 2, 0); err != nil {
		unix.Close(fd)
		return
	}
	unix.Close(fd)
	logrus.SetOutput(os.Stderr)
}
