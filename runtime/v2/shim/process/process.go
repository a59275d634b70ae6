// Package process runs a container's processes through runc: the init
// process (runc create/start) and exec'd processes (runc exec --detach),
// with their stdio plumbed to the client's FIFOs, a log file or a logging
// binary, or a terminal. Exits come from the shim's reaper through a
// Tracker; a process never waits for itself.
package process

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/containerd/console"
)

// Stdio names where a process's stdio goes. Stdout and Stderr are FIFO
// paths, or URIs: file:///path (append to a file), binary:///path?k=v (a
// logging binary). Empty means none (/dev/null).
type Stdio struct {
	Stdin    string
	Stdout   string
	Stderr   string
	Terminal bool
}

// IsNull reports whether the process has no stdio at all.
func (s Stdio) IsNull() bool {
	return s.Stdin == "" && s.Stdout == "" && s.Stderr == ""
}

// Status is a process's lifecycle state, with containerd's names.
type Status string

const (
	Created Status = "created"
	Running Status = "running"
	Paused  Status = "paused"
	Stopped Status = "stopped"
	Deleted Status = "deleted"
)

// Process is an init or exec'd process.
type Process interface {
	ID() string
	Pid() int
	Status() Status
	ExitStatus() int
	ExitedAt() time.Time
	Stdio() Stdio
	// Done is closed when the process has exited.
	Done() <-chan struct{}
	Start(ctx context.Context) error
	Kill(ctx context.Context, sig int, all bool) error
	Delete(ctx context.Context) error
	Resize(ws console.WinSize) error
	// CloseStdin closes the process's stdin: the process reads EOF once the
	// client's data is drained.
	CloseStdin() error
	// SetExited records the exit; later calls are ignored.
	SetExited(status int, at time.Time)
}

// exitState is the part of the lifecycle every process shares.
type exitState struct {
	mu     sync.Mutex
	pid    int
	status Status
	code   int
	at     time.Time
	done   chan struct{}
}

func newExitState() exitState {
	return exitState{done: make(chan struct{})}
}

// setExited records the exit under s.mu.
func (s *exitState) setExitedLocked(code int, at time.Time) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	s.code = code
	s.at = at
	if s.status != Deleted {
		s.status = Stopped
	}
	close(s.done)
	return true
}

func (s *exitState) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

func (s *exitState) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *exitState) ExitStatus() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code
}

func (s *exitState) ExitedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at
}

func (s *exitState) Done() <-chan struct{} { return s.done }

// killError turns "the process is gone" from runc or kill(2) into NotFound,
// which is what containerd's clients expect when they signal a process that
// just exited.
func killError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if errdefs.IsNotFound(err) || strings.Contains(msg, "no such process") ||
		strings.Contains(msg, "process already finished") || strings.Contains(msg, "container not running") {
		return fmt.Errorf("process already finished: %w", errdefs.ErrNotFound)
	}
	return err
}

// waitTimeout waits for wg, but not longer than d: output copies of a
// process whose orphans still hold its pipes must not block a delete.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}
