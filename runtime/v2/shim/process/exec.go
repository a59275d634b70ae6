package process

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
	"github.com/berth-containers/berth/runtime/v2/shim/runc"
	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Exec is a process started in a running container with `runc exec`.
type Exec struct {
	exitState
	id     string
	parent *Init
	spec   specs.Process
	stdio  Stdio
	io     *processIO
}

// NewExec describes an additional process of p's container; Start runs it.
// The spec's Terminal decides whether it gets a pty.
func (p *Init) NewExec(id string, spec *specs.Process, stdio Stdio) (*Exec, error) {
	if err := identifiers.Validate(id); err != nil {
		return nil, fmt.Errorf("exec id: %w", err)
	}
	if spec == nil || len(spec.Args) == 0 {
		return nil, fmt.Errorf("exec %q: process has no args: %w", id, errdefs.ErrInvalidArgument)
	}
	stdio.Terminal = spec.Terminal
	return &Exec{exitState: newExitState(), id: id, parent: p, spec: *spec, stdio: stdio}, nil
}

func (e *Exec) ID() string   { return e.id }
func (e *Exec) Stdio() Stdio { return e.stdio }
func (e *Exec) SetExited(code int, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setExitedLocked(code, at)
}

// Status of an exec that was never started is "created".
func (e *Exec) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.status == "" {
		return Created
	}
	return e.status
}

func (e *Exec) pidFile() string {
	return filepath.Join(e.parent.cfg.Bundle, e.id+".pid")
}

// Start runs the process with `runc exec --detach` and records its pid.
// The container must be running.
func (e *Exec) Start(ctx context.Context) (retErr error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.status != "" {
		return fmt.Errorf("exec %q: already started: %w", e.id, errdefs.ErrFailedPrecondition)
	}
	if st := e.parent.Status(); st != Running {
		return fmt.Errorf("exec %q: container is %s, not running: %w", e.id, e.parent.statusName(), errdefs.ErrFailedPrecondition)
	}
	pio, err := newIO(ctx, e.parent.cfg.ID, e.stdio)
	if err != nil {
		return fmt.Errorf("set up stdio: %w", err)
	}
	defer func() {
		if retErr != nil {
			pio.Close()
		}
	}()
	spec, err := e.writeSpec()
	if err != nil {
		return err
	}
	defer os.Remove(spec)

	opts := runc.ExecOpts{Detach: true, PidFile: e.pidFile(), IO: pio.runcIO()}
	var cr *consoleReceiver
	if e.stdio.Terminal {
		if cr, err = newConsoleReceiver(); err != nil {
			return err
		}
		opts.ConsoleSocket = cr.sock.Path()
	}
	err = e.parent.cfg.Runtime.ExecFile(ctx, e.parent.cfg.ID, spec, opts)
	pio.closeAfterStart()
	if err != nil {
		if cr != nil {
			cr.abort()
		}
		return err
	}
	pid, err := readPidFile(opts.PidFile)
	if err != nil {
		return err
	}
	// The pid is recorded before the console so a failure below can still
	// kill the process.
	e.pid = pid
	if cr != nil {
		master, err := cr.master(ctx)
		if err == nil {
			err = pio.attachConsole(master)
		}
		if err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			return err
		}
	}
	e.io = pio
	e.status = Running
	return nil
}

// writeSpec writes the process description runc exec reads into the bundle.
func (e *Exec) writeSpec() (string, error) {
	f, err := os.CreateTemp(e.parent.cfg.Bundle, ".exec-"+e.id+"-*.json")
	if err != nil {
		return "", fmt.Errorf("write exec process spec: %w", err)
	}
	err = json.NewEncoder(f).Encode(e.spec)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write exec process spec: %w", err)
	}
	return f.Name(), nil
}

// Kill signals the process directly: runc kill only reaches the init.
func (e *Exec) Kill(ctx context.Context, sig int, _ bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.status {
	case Running:
		return killError(unix.Kill(e.pid, unix.Signal(sig)))
	case Stopped:
		return fmt.Errorf("process already finished: %w", errdefs.ErrNotFound)
	case Deleted:
		return fmt.Errorf("process already deleted: %w", errdefs.ErrNotFound)
	}
	return fmt.Errorf("exec %q: not started: %w", e.id, errdefs.ErrFailedPrecondition)
}

// Delete releases an exited (or never started) process's stdio.
func (e *Exec) Delete(ctx context.Context) error {
	e.mu.Lock()
	switch e.status {
	case Running:
		e.mu.Unlock()
		return fmt.Errorf("exec %q: cannot delete a running process: %w", e.id, errdefs.ErrFailedPrecondition)
	case Deleted:
		e.mu.Unlock()
		return fmt.Errorf("exec %q: already deleted: %w", e.id, errdefs.ErrNotFound)
	}
	e.status = Deleted
	pio := e.io
	e.mu.Unlock()
	if pio != nil {
		waitTimeout(&pio.outputs, deleteDrain)
		pio.Close()
	}
	os.Remove(e.pidFile())
	return nil
}

// Resize sets the terminal's window size.
func (e *Exec) Resize(ws console.WinSize) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return resize(e.io, ws)
}

// CloseStdin closes the process's stdin.
func (e *Exec) CloseStdin() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.io.CloseStdin()
}

var _ Process = (*Exec)(nil)
