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

// signalCatcher catches every signal ctr receives from the moment it is
// made. Until forward is called it holds them; then it sends them on to
// the process; after stop, a signal that would have ended ctr by default
// ends it. SIGCHLD, SIGPIPE, SIGURG and SIGWINCH are ctr's own business.
//
// signal.Notify for every signal costs a round trip to the Go runtime's
// signal thread per signal (about 65 of them): 0.4 ms to 13 ms measured
// here, mostly thread hand-offs that with ctr's one P also take the P from
// the main goroutine. Attached runs start catching before the task's Start
// request, so that cost runs beside `runc start` instead of between the
// task's start and its exit; and signal.Stop, which costs as much again
// (3 to 7 ms measured between a task's delete and the container's), is
// never called: ctr exits soon after stop.
type signalCatcher struct {
	ch    chan os.Signal
	start chan func(syscallSignal)
	done  chan struct{}
}

func catchSignals() *signalCatcher {
	s := &signalCatcher{ch: make(chan os.Signal, 128), start: make(chan func(syscallSignal)), done: make(chan struct{})}
	go signal.Notify(s.ch)
	go s.loop()
	return s
}

func (s *signalCatcher) loop() {
	var (
		kill    func(syscallSignal)
		held    []syscallSignal
		done    = s.done
		stopped bool
	)
	for {
		select {
		case kill = <-s.start:
			for _, n := range held {
				kill(n)
			}
			held = nil
		case <-done:
			done, stopped = nil, true
			for _, n := range held {
				exitOnSignal(n)
			}
		case sig := <-s.ch:
			n := sig.(syscallSignal)
			switch {
			case n == unix.SIGCHLD || n == unix.SIGPIPE || n == unix.SIGURG || n == unix.SIGWINCH:
			case stopped:
				exitOnSignal(n)
			case kill == nil:
				held = append(held, n)
			default:
				kill(n)
			}
		}
	}
}

// exitOnSignal ends ctr as the signal's default action would have.
func exitOnSignal(n syscallSignal) {
	switch n {
	case unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM:
		os.Exit(128 + int(n))
	}
}

// forward sends the signals held so far, and each one caught from now
// until stop, to kill.
func (s *signalCatcher) forward(ctx context.Context, kill func(context.Context, syscallSignal) error) {
	s.start <- func(n syscallSignal) {
		if err := kill(ctx, n); err != nil {
			log.G(ctx).WithError(err).Debugf("forward signal %s", n)
		}
	}
}

// stop ends forwarding.
func (s *signalCatcher) stop() {
	close(s.done)
}

// forwardSignals catches and forwards every signal until the returned stop
// func is called.
func forwardSignals(ctx context.Context, kill func(context.Context, syscallSignal) error) func() {
	s := catchSignals()
	s.forward(ctx, kill)
	return s.stop
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
