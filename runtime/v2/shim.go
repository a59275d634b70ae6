package v2

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	apitypes "github.com/berth-containers/berth/api/types"
	tasktypes "github.com/berth-containers/berth/api/types/task"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
)

// Task is one task: a shim connection plus what we know of it. Calls go
// straight to the shim over ttrpc; the daemon keeps no copy of the shim's
// state, so there is nothing to get out of step after a restart.
type Task struct {
	ID        string
	Namespace string
	Runtime   string
	Bundle    *Bundle
	// Pid is the init process's pid as the shim reported it at create.
	Pid uint32

	binary *shimBinary
	client *ttrpc.Client
	task   taskapi.TaskService

	// lost is told when the live shim answers that it has no such task.
	lost func(context.Context, *Task)

	mu       sync.Mutex
	dead     *DeleteResult // set once the shim is gone; the task is then STOPPED
	gone     chan struct{} // closed when dead is set
	deleting bool          // a delete has begun; see markDeleting
}

func newTask(id, ns, runtime string, b *Bundle) *Task {
	return &Task{ID: id, Namespace: ns, Runtime: runtime, Bundle: b, gone: make(chan struct{})}
}

// setDead records how the task ended; only the first call counts.
func (t *Task) setDead(res *DeleteResult) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead != nil {
		return false
	}
	t.dead = res
	close(t.gone)
	return true
}

// markDeleting claims the task's deletion; false if it was claimed before.
func (t *Task) markDeleting() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.deleting {
		return false
	}
	t.deleting = true
	return true
}

func (t *Task) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, t.Namespace)
}

// shimErr maps a ttrpc status error back to our error kinds and names the task.
func (t *Task) shimErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if err == ttrpc.ErrClosed {
		return fmt.Errorf("task %q: %s: shim is gone: %w", t.ID, op, errdefs.ErrNotFound)
	}
	return fmt.Errorf("task %q: %s: %w", t.ID, op, errdefs.FromGRPC(err))
}

func (t *Task) deadState() *DeleteResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dead
}

// CreateOpts is what a task is created from.
type CreateOpts struct {
	Spec           []byte // runtime spec JSON
	Rootfs         []*apitypes.Mount
	Terminal       bool
	Stdin          string
	Stdout         string
	Stderr         string
	Checkpoint     string
	RuntimeOptions *anypb.Any // from the container record
	TaskOptions    *anypb.Any // from the create request
}

// Pid returns the init process's pid (0 once stopped).
func (t *Task) State(ctx context.Context, execID string) (*taskapi.StateResponse, error) {
	if d := t.deadState(); d != nil {
		if execID != "" {
			return nil, fmt.Errorf("process %q of task %q: %w", execID, t.ID, errdefs.ErrNotFound)
		}
		return &taskapi.StateResponse{
			Id: t.ID, Bundle: t.Bundle.Path, Pid: d.Pid, Status: tasktypes.Status_STOPPED,
			ExitStatus: d.ExitStatus, ExitedAt: timestamp(d.ExitedAt),
		}, nil
	}
	r, err := t.task.State(t.ctx(ctx), &taskapi.StateRequest{Id: t.ID, ExecId: execID})
	if err != nil && err != ttrpc.ErrClosed && execID == "" && t.lost != nil && errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		// The shim answered, and it has no such task.
		t.lost(ctx, t)
	}
	return r, t.shimErr("state", err)
}

func (t *Task) Start(ctx context.Context, execID string) (uint32, error) {
	if t.deadState() != nil {
		return 0, fmt.Errorf("task %q has stopped: %w", t.ID, errdefs.ErrFailedPrecondition)
	}
	r, err := t.task.Start(t.ctx(ctx), &taskapi.StartRequest{Id: t.ID, ExecId: execID})
	if err != nil {
		return 0, t.shimErr("start", err)
	}
	return r.Pid, nil
}

func (t *Task) Kill(ctx context.Context, execID string, signal uint32, all bool) error {
	if t.deadState() != nil {
		return fmt.Errorf("task %q: process already finished: %w", t.ID, errdefs.ErrNotFound)
	}
	_, err := t.task.Kill(t.ctx(ctx), &taskapi.KillRequest{Id: t.ID, ExecId: execID, Signal: signal, All: all})
	return t.shimErr("kill", err)
}

func (t *Task) Exec(ctx context.Context, r *taskapi.ExecProcessRequest) error {
	if t.deadState() != nil {
		return fmt.Errorf("task %q has stopped: %w", t.ID, errdefs.ErrFailedPrecondition)
	}
	r.Id = t.ID
	_, err := t.task.Exec(t.ctx(ctx), r)
	return t.shimErr("exec", err)
}

func (t *Task) ResizePty(ctx context.Context, execID string, w, h uint32) error {
	_, err := t.task.ResizePty(t.ctx(ctx), &taskapi.ResizePtyRequest{Id: t.ID, ExecId: execID, Width: w, Height: h})
	return t.shimErr("resize pty", err)
}

func (t *Task) CloseIO(ctx context.Context, execID string, stdin bool) error {
	_, err := t.task.CloseIO(t.ctx(ctx), &taskapi.CloseIORequest{Id: t.ID, ExecId: execID, Stdin: stdin})
	return t.shimErr("close io", err)
}

func (t *Task) Pause(ctx context.Context) error {
	_, err := t.task.Pause(t.ctx(ctx), &taskapi.PauseRequest{Id: t.ID})
	return t.shimErr("pause", err)
}

func (t *Task) Resume(ctx context.Context) error {
	_, err := t.task.Resume(t.ctx(ctx), &taskapi.ResumeRequest{Id: t.ID})
	return t.shimErr("resume", err)
}

func (t *Task) Pids(ctx context.Context) ([]*tasktypes.ProcessInfo, error) {
	if t.deadState() != nil {
		return nil, nil
	}
	r, err := t.task.Pids(t.ctx(ctx), &taskapi.PidsRequest{Id: t.ID})
	if err != nil {
		return nil, t.shimErr("pids", err)
	}
	return r.Processes, nil
}

func (t *Task) Update(ctx context.Context, resources *anypb.Any, annotations map[string]string) error {
	_, err := t.task.Update(t.ctx(ctx), &taskapi.UpdateTaskRequest{Id: t.ID, Resources: resources, Annotations: annotations})
	return t.shimErr("update", err)
}

func (t *Task) Stats(ctx context.Context) (*anypb.Any, error) {
	r, err := t.task.Stats(t.ctx(ctx), &taskapi.StatsRequest{Id: t.ID})
	if err != nil {
		return nil, t.shimErr("stats", err)
	}
	return r.Stats, nil
}

// Wait blocks until the process exits and returns its status.
func (t *Task) Wait(ctx context.Context, execID string) (uint32, time.Time, error) {
	if d := t.deadState(); d != nil && execID == "" {
		return d.ExitStatus, d.ExitedAt, nil
	}
	r, err := t.task.Wait(t.ctx(ctx), &taskapi.WaitRequest{Id: t.ID, ExecId: execID})
	if err != nil {
		if err == ttrpc.ErrClosed && execID == "" {
			// The shim died while we waited: report what the cleanup
			// after it records, once it has.
			select {
			case <-t.gone:
				d := t.deadState()
				return d.ExitStatus, d.ExitedAt, nil
			case <-ctx.Done():
				return 0, time.Time{}, ctx.Err()
			}
		}
		return 0, time.Time{}, t.shimErr("wait", err)
	}
	return r.ExitStatus, r.ExitedAt.AsTime(), nil
}

// DeleteProcess deletes an exec'd process.
func (t *Task) DeleteProcess(ctx context.Context, execID string) (*DeleteResult, error) {
	r, err := t.task.Delete(t.ctx(ctx), &taskapi.DeleteRequest{Id: t.ID, ExecId: execID})
	if err != nil {
		return nil, t.shimErr("delete process", err)
	}
	return &DeleteResult{Pid: r.Pid, ExitStatus: r.ExitStatus, ExitedAt: r.ExitedAt.AsTime()}, nil
}

func (t *Task) Connect(ctx context.Context) (*taskapi.ConnectResponse, error) {
	r, err := t.task.Connect(t.ctx(ctx), &taskapi.ConnectRequest{Id: t.ID})
	return r, t.shimErr("connect", err)
}

func decodeDeleteResponse(out []byte) (*DeleteResult, error) {
	var r taskapi.DeleteResponse
	if err := proto.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("decode shim delete response: %w", err)
	}
	return &DeleteResult{Pid: r.Pid, ExitStatus: r.ExitStatus, ExitedAt: r.ExitedAt.AsTime()}, nil
}
