package client

import (
	"context"
	"fmt"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	snapshotsapi "github.com/berth-containers/berth/api/services/snapshots/v1"
	tasksapi "github.com/berth-containers/berth/api/services/tasks/v1"
	apitypes "github.com/berth-containers/berth/api/types"
	tasktypes "github.com/berth-containers/berth/api/types/task"
	"github.com/berth-containers/berth/cio"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/typeurl"
)

// ProcessStatus is a process's state.
type ProcessStatus string

const (
	Running ProcessStatus = "running"
	Created ProcessStatus = "created"
	Stopped ProcessStatus = "stopped"
	Paused  ProcessStatus = "paused"
	Pausing ProcessStatus = "pausing"
	Unknown ProcessStatus = "unknown"
)

func statusFromProto(s tasktypes.Status) ProcessStatus {
	switch s {
	case tasktypes.Status_RUNNING:
		return Running
	case tasktypes.Status_CREATED:
		return Created
	case tasktypes.Status_STOPPED:
		return Stopped
	case tasktypes.Status_PAUSED:
		return Paused
	case tasktypes.Status_PAUSING:
		return Pausing
	}
	return Unknown
}

// Status is a process's state and, once stopped, its exit code.
type Status struct {
	Status     ProcessStatus
	ExitStatus uint32
	ExitedAt   time.Time
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	Code     uint32
	ExitedAt time.Time
	Err      error
}

// Result returns the exit code and time, or the error that prevented
// learning them.
func (e ExitStatus) Result() (uint32, time.Time, error) { return e.Code, e.ExitedAt, e.Err }

// TaskInfo is what NewTask sends beyond IO.
type TaskInfo struct {
	Options *anypb.Any
	Rootfs  []*apitypes.Mount
}

// NewTaskOpts configures NewTask.
type NewTaskOpts func(ctx context.Context, c *Client, info *TaskInfo) error

// WithTaskOptions passes runtime-specific options (e.g. runc options).
func WithTaskOptions(v interface{}) NewTaskOpts {
	return func(_ context.Context, _ *Client, info *TaskInfo) error {
		a, err := typeurl.MarshalAny(v)
		if err != nil {
			return err
		}
		info.Options = a
		return nil
	}
}

// process is what a task and an exec'd process share.
type process struct {
	c      *Client
	taskID string
	id     string // exec id; "" for the init process
	pid    uint32
	io     cio.IO
	// shimOpened: the shim has opened its ends of io's FIFOs (it does so
	// when it creates a task and when it starts an exec), so waitIO must
	// not abandon our opens: one the kernel has completed but whose
	// goroutine has not yet run would be dropped with the output it was
	// about to read.
	shimOpened bool
	// unstarted: made by NewTask here and not started yet.
	unstarted bool
}

// Task is the init process of a container.
type Task struct {
	process
}

// Process is an exec'd process.
type Process struct {
	process
}

// NewTask creates the container's task (not yet started) with IO from ioCreate.
func (ct *Container) NewTask(ctx context.Context, ioCreate cio.Creator, opts ...NewTaskOpts) (_ *Task, retErr error) {
	ctx = ct.c.withNamespace(ctx)
	info, err := ct.record(ctx)
	if err != nil {
		return nil, err
	}
	var ti TaskInfo
	for _, o := range opts {
		if err := o(ctx, ct.c, &ti); err != nil {
			return nil, err
		}
	}
	i, err := ioCreate(ct.id)
	if err != nil {
		return nil, fmt.Errorf("set up io for %q: %w", ct.id, err)
	}
	defer func() {
		if retErr != nil {
			i.Cancel()
			i.Close()
		}
	}()
	cfg := i.Config()
	req := &tasksapi.CreateTaskRequest{
		ContainerId: ct.id, Terminal: cfg.Terminal,
		Stdin: cfg.Stdin, Stdout: cfg.Stdout, Stderr: cfg.Stderr,
		Options: ti.Options, Rootfs: ti.Rootfs,
	}
	// The client, like containerd's, resolves the container's snapshot
	// into mounts; the shim mounts them as the rootfs.
	if info.SnapshotKey != "" && len(req.Rootfs) == 0 && len(ct.rootfs) > 0 {
		req.Rootfs = mountsToProto(ct.rootfs)
	} else if info.SnapshotKey != "" && len(req.Rootfs) == 0 {
		r, err := snapshotsapi.NewSnapshotsClient(ct.c.conn).Mounts(ctx, &snapshotsapi.MountsRequest{
			Snapshotter: info.Snapshotter, Key: info.SnapshotKey,
		})
		if err != nil {
			return nil, fmt.Errorf("mounts of snapshot %q: %w", info.SnapshotKey, errdefs.FromGRPC(err))
		}
		req.Rootfs = r.Mounts
	}
	r, err := ct.c.TaskService().Create(ctx, req)
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	cio.Release(i)
	return &Task{process{c: ct.c, taskID: ct.id, pid: r.Pid, io: i, shimOpened: true, unstarted: true}}, nil
}

// Task loads the container's existing task; with attach, it re-opens the
// task's FIFOs to copy its IO.
func (ct *Container) Task(ctx context.Context, attach cio.Attach) (*Task, error) {
	ctx = ct.c.withNamespace(ctx)
	r, err := ct.c.TaskService().Get(ctx, &tasksapi.GetRequest{ContainerId: ct.id})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	t := &Task{process{c: ct.c, taskID: ct.id, pid: r.Process.Pid, shimOpened: true}}
	if attach != nil {
		p := r.Process
		set := cio.NewFIFOSet(cio.Config{Terminal: p.Terminal, Stdin: p.Stdin, Stdout: p.Stdout, Stderr: p.Stderr}, nil)
		if t.io, err = attach(set); err != nil {
			return nil, fmt.Errorf("attach to task %q: %w", ct.id, err)
		}
	}
	return t, nil
}

// TaskService is the raw tasks API.
func (c *Client) TaskService() tasksapi.TasksClient { return tasksapi.NewTasksClient(c.conn) }

// ID is the task's container id, or the exec id.
func (p *process) ID() string {
	if p.id != "" {
		return p.id
	}
	return p.taskID
}

// Pid is the process id on the host.
func (p *process) Pid() uint32 { return p.pid }

// IO is the process's client-side IO (nil when loaded without attach).
func (p *process) IO() cio.IO { return p.io }

// Start starts the process.
func (p *process) Start(ctx context.Context) error {
	ctx = p.c.withNamespace(ctx)
	r, err := p.c.TaskService().Start(ctx, &tasksapi.StartRequest{ContainerId: p.taskID, ExecId: p.id})
	if err != nil {
		if p.io != nil {
			p.io.Cancel()
			p.io.Close()
		}
		return errdefs.FromGRPC(err)
	}
	p.pid = r.Pid
	p.shimOpened = true
	p.unstarted = false
	if p.io != nil {
		// An exec's process is made by runc exec, at start.
		cio.Release(p.io)
	}
	return nil
}

// Wait returns a channel that delivers the exit status once the process
// exits. Call it before Start so a fast exit is not missed.
func (p *process) Wait(ctx context.Context) (<-chan ExitStatus, error) {
	ctx = p.c.withNamespace(ctx)
	ch := make(chan ExitStatus, 1)
	go func() {
		r, err := p.c.TaskService().Wait(ctx, &tasksapi.WaitRequest{ContainerId: p.taskID, ExecId: p.id})
		if err != nil {
			ch <- ExitStatus{Code: 255, Err: errdefs.FromGRPC(err)}
			return
		}
		ch <- ExitStatus{Code: r.ExitStatus, ExitedAt: r.ExitedAt.AsTime()}
	}()
	return ch, nil
}

// KillOpts configures Kill.
type KillOpts struct {
	All bool
}

// WithKillAll signals every process in the container.
func WithKillAll(o *KillOpts) { o.All = true }

// Kill sends a signal.
func (p *process) Kill(ctx context.Context, sig syscall.Signal, opts ...func(*KillOpts)) error {
	var o KillOpts
	for _, f := range opts {
		f(&o)
	}
	ctx = p.c.withNamespace(ctx)
	_, err := p.c.TaskService().Kill(ctx, &tasksapi.KillRequest{ContainerId: p.taskID, ExecId: p.id, Signal: uint32(sig), All: o.All})
	return errdefs.FromGRPC(err)
}

// Status returns the process's state.
func (p *process) Status(ctx context.Context) (Status, error) {
	ctx = p.c.withNamespace(ctx)
	r, err := p.c.TaskService().Get(ctx, &tasksapi.GetRequest{ContainerId: p.taskID, ExecId: p.id})
	if err != nil {
		return Status{}, errdefs.FromGRPC(err)
	}
	return Status{Status: statusFromProto(r.Process.Status), ExitStatus: r.Process.ExitStatus, ExitedAt: r.Process.ExitedAt.AsTime()}, nil
}

// Resize resizes the process's terminal.
func (p *process) Resize(ctx context.Context, w, h uint32) error {
	ctx = p.c.withNamespace(ctx)
	_, err := p.c.TaskService().ResizePty(ctx, &tasksapi.ResizePtyRequest{ContainerId: p.taskID, ExecId: p.id, Width: w, Height: h})
	return errdefs.FromGRPC(err)
}

// CloseStdin closes the process's stdin in the shim.
func (p *process) CloseStdin(ctx context.Context) error {
	ctx = p.c.withNamespace(ctx)
	_, err := p.c.TaskService().CloseIO(ctx, &tasksapi.CloseIORequest{ContainerId: p.taskID, ExecId: p.id, Stdin: true})
	return errdefs.FromGRPC(err)
}

// waitIO lets output copying finish, then releases the client's streams.
// The shim closes its ends when the process exits, so nothing is lost.
// Opens still waiting for a shim that never opened its ends (an exec
// never started) are abandoned.
func (p *process) waitIO() {
	if p.io != nil {
		if !p.shimOpened {
			p.io.Cancel()
		}
		p.io.Wait()
	}
}

func (p *process) closeIO() {
	if p.io != nil {
		p.io.Close()
	}
}

// Delete deletes the stopped task (shim, bundle, runc state) and returns
// its exit status.
func (t *Task) Delete(ctx context.Context) (*ExitStatus, error) {
	ctx = t.c.withNamespace(ctx)
	if t.unstarted && t.io != nil {
		// Never started (its start was not wanted after all): runc's
		// init, waiting to exec the process, holds the other ends of the
		// streams until the delete kills it, and has written nothing of
		// the process's. Waiting for the streams to end would wait for
		// ever; they are closed instead.
		t.io.Cancel()
		t.io.Close()
	}
	t.waitIO()
	r, err := t.c.TaskService().Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerId: t.taskID})
	t.closeIO()
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &ExitStatus{Code: r.ExitStatus, ExitedAt: r.ExitedAt.AsTime()}, nil
}

// Delete deletes the exited process.
func (p *Process) Delete(ctx context.Context) (*ExitStatus, error) {
	ctx = p.c.withNamespace(ctx)
	p.waitIO()
	r, err := p.c.TaskService().DeleteProcess(ctx, &tasksapi.DeleteProcessRequest{ContainerId: p.taskID, ExecId: p.id})
	p.closeIO()
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &ExitStatus{Code: r.ExitStatus, ExitedAt: r.ExitedAt.AsTime()}, nil
}

// Pause freezes every process of the task.
func (t *Task) Pause(ctx context.Context) error {
	_, err := t.c.TaskService().Pause(t.c.withNamespace(ctx), &tasksapi.PauseTaskRequest{ContainerId: t.taskID})
	return errdefs.FromGRPC(err)
}

// Resume thaws the task.
func (t *Task) Resume(ctx context.Context) error {
	_, err := t.c.TaskService().Resume(t.c.withNamespace(ctx), &tasksapi.ResumeTaskRequest{ContainerId: t.taskID})
	return errdefs.FromGRPC(err)
}

// ProcessInfo is one process in a task.
type ProcessInfo struct {
	Pid  uint32
	Info *anypb.Any
}

// Pids lists the task's processes.
func (t *Task) Pids(ctx context.Context) ([]ProcessInfo, error) {
	r, err := t.c.TaskService().ListPids(t.c.withNamespace(ctx), &tasksapi.ListPidsRequest{ContainerId: t.taskID})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	out := make([]ProcessInfo, 0, len(r.Processes))
	for _, p := range r.Processes {
		out = append(out, ProcessInfo{Pid: p.Pid, Info: p.Info})
	}
	return out, nil
}

// Metrics returns the task's resource usage as the runtime reports it.
func (t *Task) Metrics(ctx context.Context) (*apitypes.Metric, error) {
	r, err := t.c.TaskService().Metrics(t.c.withNamespace(ctx), &tasksapi.MetricsRequest{Filters: []string{"id==" + t.taskID}})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	if len(r.Metrics) == 0 {
		return nil, fmt.Errorf("metrics for task %q: %w", t.taskID, errdefs.ErrNotFound)
	}
	return r.Metrics[0], nil
}

// Update changes the task's resources.
func (t *Task) Update(ctx context.Context, resources *specs.LinuxResources) error {
	a, err := typeurl.MarshalAny(resources)
	if err != nil {
		return err
	}
	_, err = t.c.TaskService().Update(t.c.withNamespace(ctx), &tasksapi.UpdateTaskRequest{ContainerId: t.taskID, Resources: a})
	return errdefs.FromGRPC(err)
}

// Exec creates (not starts) a new process in the task.
func (t *Task) Exec(ctx context.Context, execID string, spec *specs.Process, ioCreate cio.Creator) (_ *Process, retErr error) {
	if execID == "" {
		return nil, fmt.Errorf("exec id must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	ctx = t.c.withNamespace(ctx)
	i, err := ioCreate(execID)
	if err != nil {
		return nil, fmt.Errorf("set up io for exec %q: %w", execID, err)
	}
	defer func() {
		if retErr != nil {
			i.Cancel()
			i.Close()
		}
	}()
	a, err := typeurl.MarshalAny(spec)
	if err != nil {
		return nil, err
	}
	cfg := i.Config()
	if _, err := t.c.TaskService().Exec(ctx, &tasksapi.ExecProcessRequest{
		ContainerId: t.taskID, ExecId: execID, Terminal: cfg.Terminal,
		Stdin: cfg.Stdin, Stdout: cfg.Stdout, Stderr: cfg.Stderr, Spec: a,
	}); err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &Process{process{c: t.c, taskID: t.taskID, id: execID, io: i}}, nil
}

// Tasks lists the namespace's tasks.
func (c *Client) Tasks(ctx context.Context) ([]*tasktypes.Process, error) {
	r, err := c.TaskService().List(c.withNamespace(ctx), &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return r.Tasks, nil
}

func init() {
	typeurl.Register(specs.Process{}, typeurl.ProcessURL)
	typeurl.Register(specs.LinuxResources{}, typeurl.LinuxResourcesURL)
}

// LoadProcess returns a handle on an existing exec'd process.
func (t *Task) LoadProcess(ctx context.Context, execID string) (*Process, error) {
	r, err := t.c.TaskService().Get(t.c.withNamespace(ctx), &tasksapi.GetRequest{ContainerId: t.taskID, ExecId: execID})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &Process{process{c: t.c, taskID: t.taskID, id: execID, pid: r.Process.Pid}}, nil
}
