package process

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/berth-containers/berth/runtime/v2/shim/runc"
	"github.com/containerd/console"
)

// consoleWait bounds how long we wait for runc's pty master after runc has
// returned successfully (it sends the master before it exits).
const consoleWait = 10 * time.Second

// consoleReceiver receives a terminal process's pty master while runc
// runs: runc blocks until it has handed the master over, so the accept must
// already be pending.
type consoleReceiver struct {
	sock *runc.ConsoleSocket
	got  chan consoleResult
}

type consoleResult struct {
	f   *os.File
	err error
}

func newConsoleReceiver() (*consoleReceiver, error) {
	sock, err := runc.NewConsoleSocket()
	if err != nil {
		return nil, err
	}
	c := &consoleReceiver{sock: sock, got: make(chan consoleResult, 1)}
	go func() {
		f, err := sock.ReceiveMaster()
		c.got <- consoleResult{f, err}
	}()
	return c, nil
}

// master returns the pty master once runc has succeeded.
func (c *consoleReceiver) master(ctx context.Context) (*os.File, error) {
	defer c.sock.Close()
	t := time.NewTimer(consoleWait)
	defer t.Stop()
	select {
	case r := <-c.got:
		return r.f, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("receive pty master: %w", ctx.Err())
	case <-t.C:
		return nil, fmt.Errorf("receive pty master: runc sent none")
	}
}

// abort is for a failed runc: stop listening and drop a master that may
// have arrived anyway.
func (c *consoleReceiver) abort() {
	c.sock.Close()
	if r := <-c.got; r.f != nil {
		r.f.Close()
	}
}

// rawFd hands containerd/console the master's fd number without calling
// os.File.Fd, which would switch the file back to blocking mode and take it
// off the Go poller (then Close could no longer interrupt a read).
type rawFd struct {
	*os.File
	fd uintptr
}

func (r rawFd) Fd() uintptr { return r.fd }

// attachConsole starts copying stdin into the pty and the pty's output to
// the stdout destination.
func (p *processIO) attachConsole(master *os.File) error {
	var fd uintptr
	rc, err := master.SyscallConn()
	if err == nil {
		err = rc.Control(func(f uintptr) { fd = f })
	}
	if err != nil {
		master.Close()
		return fmt.Errorf("pty master: %w", err)
	}
	con, err := console.ConsoleFromFile(rawFd{master, fd})
	if err != nil {
		master.Close()
		return fmt.Errorf("pty master: %w", err)
	}
	p.console = con
	if p.stdinR != nil {
		// Stdin EOF leaves the pty open: closing the master would hang up
		// the process and lose its output.
		go func() { _, _ = io.Copy(con, p.stdinR) }()
	}
	// Output is read even without a destination: a full pty buffer would
	// block the process.
	var out io.Writer = io.Discard
	if p.termOut != nil {
		out = p.termOut
		p.termOut.mu.Lock()
		p.termOut.refs++
		p.termOut.mu.Unlock()
	}
	p.copyOut(out, con, func() {
		if p.termOut != nil {
			p.termOut.release()
		}
	})
	return nil
}
