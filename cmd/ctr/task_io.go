package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/containerd/console"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/cio"
	"github.com/berth-containers/berth/client"
)

// ioFlags choose where a new process's IO goes.
var ioFlags = []cli.Flag{
	&cli.BoolFlag{Name: "null-io", Usage: "send all IO to /dev/null"},
	&cli.StringFlag{Name: "log-uri", Usage: "log uri (file:///path or binary:///path?arg=v)"},
	&cli.StringFlag{Name: "fifo-dir", Usage: "directory used for storing IO FIFOs"},
}

// stdinCloser lets the IO ask the daemon to close the process's stdin once
// ctr's stdin ends, even though the process is created after the IO.
type stdinCloser struct {
	mu    sync.Mutex
	close func()
}

func (s *stdinCloser) set(fn func()) {
	s.mu.Lock()
	s.close = fn
	s.mu.Unlock()
}

func (s *stdinCloser) onEOF() {
	s.mu.Lock()
	fn := s.close
	s.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// ioCreator picks the IO for a process from the flags. Detached processes
// without a log URI get null IO: FIFOs nobody reads would fill and block
// the process once ctr has gone.
func ioCreator(c *cli.Context, tty, detach bool, stdin *stdinCloser) (cio.Creator, error) {
	switch {
	case c.Bool("null-io"):
		if tty {
			return nil, fmt.Errorf("tty and null-io cannot be used together")
		}
		return cio.NullIO, nil
	case c.String("log-uri") != "":
		u, err := cio.ParseLogURI(c.String("log-uri"))
		if err != nil {
			return nil, err
		}
		return cio.LogURI(u), nil
	case detach:
		return cio.NullIO, nil
	}
	opts := []cio.Opt{cio.WithStreams(cio.StdinCloser(os.Stdin, stdin.onEOF), os.Stdout, os.Stderr)}
	if tty {
		opts = append(opts, cio.WithTerminal)
	}
	if d := c.String("fifo-dir"); d != "" {
		opts = append(opts, cio.WithFIFODir(d))
	}
	return cio.NewCreator(opts...), nil
}

// writePidFile writes the pid for --pid-file.
func writePidFile(path string, pid uint32) error {
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte(fmt.Sprintf("%d", pid)), 0o644)
}

// runAttached starts a created task and stays with it: forwards signals or
// resizes, waits, deletes it, and returns its exit code.
func runAttached(ctx context.Context, c *cli.Context, task *client.Task, tty bool, stdin *stdinCloser) (uint32, error) {
	var con console.Console
	if tty {
		con = console.Current()
		if err := con.SetRaw(); err != nil {
			return 0, fmt.Errorf("set terminal raw: %w", err)
		}
		defer con.Reset()
	}
	var signals *signalCatcher
	if !tty {
		signals = catchSignals()
		defer signals.stop()
	}
	statusC, err := task.Wait(ctx)
	if err != nil {
		return 0, err
	}
	stdin.set(func() { task.CloseStdin(context.WithoutCancel(ctx)) })
	if err := task.Start(ctx); err != nil {
		task.Delete(context.WithoutCancel(ctx))
		return 0, err
	}
	if err := writePidFile(c.String("pid-file"), task.Pid()); err != nil {
		return 0, err
	}
	if tty {
		stop := forwardResizes(ctx, con, task.Resize)
		defer stop()
	} else {
		signals.forward(ctx, func(ctx context.Context, sig syscallSignal) error { return task.Kill(ctx, sig) })
	}
	status := <-statusC
	code, _, err := status.Result()
	if err != nil {
		return 0, err
	}
	if _, err := task.Delete(context.WithoutCancel(ctx)); err != nil {
		return code, err
	}
	return code, nil
}
