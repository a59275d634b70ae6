package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/pkg/log"
)

// parseSignal accepts "SIGKILL", "KILL", "kill" and "9".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal number %d", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// forwardSignals sends every signal ctr receives to the process until the
// returned stop func is called. SIGCHLD, SIGPIPE, SIGURG and SIGWINCH are
// ctr's own business.
func forwardSignals(ctx context.Context, kill func(context.Context, syscallSignal) error) func() {
	ch := make(chan os.Signal, 128)
	signal.Notify(ch)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				sig := s.(syscall.Signal)
				switch sig {
				case unix.SIGCHLD, unix.SIGPIPE, unix.SIGURG, unix.SIGWINCH:
					continue
				}
				if err := kill(ctx, sig); err != nil {
					log.G(ctx).WithError(err).Debugf("forward signal %s", sig)
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// forwardResizes keeps the process's terminal the size of ours.
func forwardResizes(ctx context.Context, con console.Console, resize func(context.Context, uint32, uint32) error) func() {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, unix.SIGWINCH)
	done := make(chan struct{})
	send := func() {
		if size, err := con.Size(); err == nil {
			resize(ctx, uint32(size.Width), uint32(size.Height))
		}
	}
	send()
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
				send()
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

type syscallSignal = syscall.Signal
