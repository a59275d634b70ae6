package process

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/runtime/v2/shim/runc"
	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// InitPidFile is the init's pid file in the bundle; `shim delete` reads it.
const InitPidFile = "init.pid"

// deleteDrain bounds how long a delete waits for the output copies.
const deleteDrain = 2 * time.Second

// InitConfig describes a container's init process.
type InitConfig struct {
	ID      string
	Bundle  string
	Runtime *runc.Runc
	Stdio   Stdio
	// NoPivot and NoNewKeyring are passed to runc create.
	NoPivot      bool
	NoNewKeyring bool
	// StartByFifo lets Start release the init through runc's exec FIFO
	// itself instead of running `runc start` (see runc.StartByFifo).
	StartByFifo bool
}

// Init is a container's init process, the container itself as runc sees
// it: runc create/start/kill/delete act on it by container id.
type Init struct {
	exitState
	cfg InitConfig
	io  *processIO
}

// NewInit returns the init of cfg.ID; Create makes it.
func NewInit(cfg InitConfig) *Init {
	return &Init{exitState: newExitState(), cfg: cfg}
}

func (p *Init) ID() string          { return p.cfg.ID }
func (p *Init) Bundle() string      { return p.cfg.Bundle }
func (p *Init) Stdio() Stdio        { return p.cfg.Stdio }
func (p *Init) Runtime() *runc.Runc { return p.cfg.Runtime }
func (p *Init) SetExited(code int, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setExitedLocked(code, at)
}

// Create runs `runc create` with the process's stdio and records the init's
// pid. The init then waits for Start.
func (p *Init) Create(ctx context.Context) (retErr error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != "" {
		return fmt.Errorf("container %q: already created: %w", p.cfg.ID, errdefs.ErrAlreadyExists)
	}
	pio, err := newIO(ctx, p.cfg.ID, p.cfg.Stdio)
	if err != nil {
		return fmt.Errorf("set up stdio: %w", err)
	}
	defer func() {
		if retErr != nil {
			pio.Close()
		}
	}()
	opts := runc.CreateOpts{
		PidFile:      filepath.Join(p.cfg.Bundle, InitPidFile),
		NoPivot:      p.cfg.NoPivot,
		NoNewKeyring: p.cfg.NoNewKeyring,
		IO:           pio.runcIO(),
	}
	var cr *consoleReceiver
	if p.cfg.Stdio.Terminal {
		if cr, err = newConsoleReceiver(); err != nil {
			return err
		}
		opts.ConsoleSocket = cr.sock.Path()
	}
	err = p.cfg.Runtime.Create(ctx, p.cfg.ID, p.cfg.Bundle, opts)
	pio.closeAfterStart()
	if err != nil {
		if cr != nil {
			cr.abort()
		}
		return err
	}
	// From here on runc has a container to remove if we fail.
	defer func() {
		if retErr != nil {
			_ = p.cfg.Runtime.Delete(context.WithoutCancel(ctx), p.cfg.ID, true)
		}
	}()
	if cr != nil {
		master, err := cr.master(ctx)
		if err != nil {
			return err
		}
		if err := pio.attachConsole(master); err != nil {
			return err
		}
	}
	pid, err := readPidFile(opts.PidFile)
	if err != nil {
		return err
	}
	p.pid = pid
	p.io = pio
	p.status = Created
	return nil
}

// Start runs `runc start`, or does its work through the exec FIFO: the
// init execs the container's command.
func (p *Init) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != Created {
		return fmt.Errorf("container %q: cannot start a %s process: %w", p.cfg.ID, p.statusName(), errdefs.ErrFailedPrecondition)
	}
	if p.cfg.StartByFifo {
		handled, err := p.cfg.Runtime.StartByFifo(ctx, p.cfg.ID, p.pid)
		if err != nil {
			return err
		}
		if handled {
			p.status = Running
			return nil
		}
	}
	if err := p.cfg.Runtime.Start(ctx, p.cfg.ID); err != nil {
		return err
	}
	p.status = Running
	return nil
}

func (p *Init) statusName() string {
	if p.status == "" {
		return "new"
	}
	return string(p.status)
}

// Kill signals the init, or with all every process of the container.
func (p *Init) Kill(ctx context.Context, sig int, all bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.status {
	case Created, Running, Paused:
		return killError(p.cfg.Runtime.Kill(ctx, p.cfg.ID, sig, all))
	case Stopped:
		if all {
			// Without its own pid namespace a container's processes
			// outlive its init; they can still be killed.
			return killError(p.cfg.Runtime.Kill(ctx, p.cfg.ID, sig, true))
		}
		return fmt.Errorf("process already finished: %w", errdefs.ErrNotFound)
	case Deleted:
		return fmt.Errorf("process already deleted: %w", errdefs.ErrNotFound)
	}
	return fmt.Errorf("container %q: not created: %w", p.cfg.ID, errdefs.ErrFailedPrecondition)
}

// KillAll SIGKILLs every process left in the container, for when the init
// exits without a pid namespace of its own to take them along.
func (p *Init) KillAll(ctx context.Context) error {
	err := p.cfg.Runtime.Kill(ctx, p.cfg.ID, int(unix.SIGKILL), true)
	if err != nil && !errdefs.IsNotFound(killError(err)) {
		return err
	}
	return nil
}

// Delete removes the container with `runc delete`, after its init exited
// (or before it started), and releases its stdio once the output is
// drained.
func (p *Init) Delete(ctx context.Context) error {
	finish, err := p.DeleteDeferred(ctx)
	if err != nil {
		return err
	}
	return finish(ctx)
}

// DeleteDeferred deletes the init as Delete does, except that for an init
// that already exited it leaves `runc delete` to the returned func. The
// exit status is final by then and the caller can answer at once: runc's
// own bookkeeping (its state dir, the empty cgroup) only matters to a new
// container of the same id, which the daemon holds back until this shim is
// gone. For any other state the work is done here and finish is a no-op.
func (p *Init) DeleteDeferred(ctx context.Context) (finish func(context.Context) error, err error) {
	done := func(context.Context) error { return nil }
	p.mu.Lock()
	st := p.status
	switch st {
	case Running, Paused:
		p.mu.Unlock()
		return nil, fmt.Errorf("container %q: cannot delete a %s process: %w", p.cfg.ID, st, errdefs.ErrFailedPrecondition)
	case Deleted:
		p.mu.Unlock()
		return nil, fmt.Errorf("container %q: already deleted: %w", p.cfg.ID, errdefs.ErrNotFound)
	case Stopped:
		finish = func(ctx context.Context) error {
			if err := p.cfg.Runtime.Delete(ctx, p.cfg.ID, false); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
			return nil
		}
	case "":
	default:
		// runc delete on a created container kills its waiting init.
		err = p.cfg.Runtime.Delete(ctx, p.cfg.ID, st == Created)
		if errdefs.IsNotFound(err) {
			err = nil
		}
	}
	p.status = Deleted
	p.mu.Unlock()

	if st == Created {
		// Its exit (SIGKILL) comes through the tracker; wait a moment so
		// the caller reports a real status.
		select {
		case <-p.done:
		case <-time.After(deleteDrain):
		}
	}
	if p.io != nil {
		waitTimeout(&p.io.outputs, deleteDrain)
		p.io.Close()
	}
	if err != nil {
		return nil, err
	}
	if finish == nil {
		finish = done
	}
	return finish, nil
}

// Pause freezes the container.
func (p *Init) Pause(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != Running {
		return fmt.Errorf("container %q: cannot pause a %s process: %w", p.cfg.ID, p.statusName(), errdefs.ErrFailedPrecondition)
	}
	if err := p.cfg.Runtime.Pause(ctx, p.cfg.ID); err != nil {
		return err
	}
	p.status = Paused
	return nil
}

// Resume thaws a paused container.
func (p *Init) Resume(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != Paused {
		return fmt.Errorf("container %q: cannot resume a %s process: %w", p.cfg.ID, p.statusName(), errdefs.ErrFailedPrecondition)
	}
	if err := p.cfg.Runtime.Resume(ctx, p.cfg.ID); err != nil {
		return err
	}
	p.status = Running
	return nil
}

// Update sets the container's resource limits.
func (p *Init) Update(ctx context.Context, r *specs.LinuxResources) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.status {
	case Created, Running, Paused:
		return p.cfg.Runtime.Update(ctx, p.cfg.ID, r)
	}
	return fmt.Errorf("container %q: cannot update a %s process: %w", p.cfg.ID, p.statusName(), errdefs.ErrFailedPrecondition)
}

// Pids lists the container's processes.
func (p *Init) Pids(ctx context.Context) ([]int, error) {
	return p.cfg.Runtime.Ps(ctx, p.cfg.ID)
}

// Resize sets the terminal's window size.
func (p *Init) Resize(ws console.WinSize) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return resize(p.io, ws)
}

// CloseStdin closes the init's stdin.
func (p *Init) CloseStdin() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.io.CloseStdin()
}

func resize(pio *processIO, ws console.WinSize) error {
	if pio == nil || pio.console == nil {
		// containerd ignores a resize of a process without a terminal;
		// clients send one unconditionally.
		return nil
	}
	return pio.console.Resize(ws)
}

// readPidFile reads a pid runc wrote.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("read pid file %s: bad pid %q", path, b)
	}
	return pid, nil
}

var _ Process = (*Init)(nil)
