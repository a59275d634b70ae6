// Package reaper owns every wait(2) in the shim. The shim is a child
// subreaper: runc, the containers it starts and anything they orphan all end
// up as our children, and a single SIGCHLD loop reaps them with
// wait4(-1, WNOHANG). Nothing else may wait: exec.Cmd.Wait would race the
// loop and lose exit statuses. Instead a command is started through the
// Monitor, which records its pid before the loop can look it up, and the
// loop hands the exit to whoever claimed that pid; exits nobody claimed
// (container processes re-parented to the shim) go to the subscribers.
package reaper

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is one reaped child.
type Exit struct {
	Pid int
	// Status is the exit code, or 128+signal when a signal killed the child.
	Status    int
	Timestamp time.Time
}

// Monitor reaps children and routes their exits. A process has one: use
// Default.
type Monitor struct {
	once sync.Once

	mu      sync.Mutex
	claimed map[int]chan Exit
	subs    map[<-chan Exit]*subscriber
}

// Default is the process-wide monitor; wait4(-1) reaps every child, so there
// can be only one.
var Default = &Monitor{}

// SetSubreaper makes this process the reaper of its orphaned descendants, so
// a container's init is re-parented to us when runc exits.
func SetSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_CHILD_SUBREAPER: %w", err)
	}
	return nil
}

// start installs the SIGCHLD handler the first time the monitor is used, so
// no caller can forget to and no exit happens before it is in place.
func (m *Monitor) start() {
	m.once.Do(func() {
		m.claimed = map[int]chan Exit{}
		m.subs = map[<-chan Exit]*subscriber{}
		sig := make(chan os.Signal, 32)
		signal.Notify(sig, unix.SIGCHLD)
		go func() {
			for range sig {
				m.Reap()
			}
		}()
	})
}

// Start starts cmd and returns a channel that receives its exit, and only
// its exit. cmd's stdio must be nil or *os.File: exec.Cmd copies anything
// else in goroutines that only Wait would end, and we never call Wait.
func (m *Monitor) Start(cmd *exec.Cmd) (<-chan Exit, error) {
	m.start()
	ec := make(chan Exit, 1)
	// Holding mu across fork and registration means the loop, which takes
	// mu before routing, cannot route this pid before we have claimed it.
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m.claimed[cmd.Process.Pid] = ec
	return ec, nil
}

// Wait returns the status of cmd, started with Start, from ec. If ctx ends
// first cmd is killed, and its exit still collected, so no zombie is left.
func (m *Monitor) Wait(ctx context.Context, cmd *exec.Cmd, ec <-chan Exit) (int, error) {
	// Release frees the pidfd os.Process holds; the pid itself is reaped by
	// the loop.
	defer cmd.Process.Release()
	select {
	case e := <-ec:
		return e.Status, nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		e := <-ec
		return e.Status, ctx.Err()
	}
}

// Run starts cmd and waits for it.
func (m *Monitor) Run(ctx context.Context, cmd *exec.Cmd) (int, error) {
	ec, err := m.Start(cmd)
	if err != nil {
		return -1, err
	}
	return m.Wait(ctx, cmd, ec)
}

// Reap collects every child that has exited and routes each exit. It runs on
// every SIGCHLD; signals coalesce, so it loops until nothing is left.
func (m *Monitor) Reap() {
	m.start()
	for {
		var ws unix.WaitStatus
		var ru unix.Rusage
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, &ru)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		m.route(Exit{Pid: pid, Status: exitStatus(ws), Timestamp: time.Now()})
	}
}

func (m *Monitor) route(e Exit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ec, ok := m.claimed[e.Pid]; ok {
		delete(m.claimed, e.Pid)
		ec <- e // buffered, exactly one send
		return
	}
	for _, s := range m.subs {
		s.push(e)
	}
}

// exitStatus maps a wait status the way shells do: the exit code, or
// 128+signal for a killed process (137 for SIGKILL).
func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
