package tasks

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	apitypes "github.com/berth-containers/berth/api/types"
	tasktypes "github.com/berth-containers/berth/api/types/task"
	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/pkg/identifiers"
	"github.com/berth-containers/berth/pkg/typeurl"
	v2 "github.com/berth-containers/berth/runtime/v2"
)

// local is the tasks service's logic. The container record decides the
// runtime and spec; the task manager owns the shims.
type local struct {
	manager    *v2.TaskManager
	containers *metadata.ContainerStore
	publisher  events.Publisher
}

// CreateRequest is what a task is created from.
type CreateRequest struct {
	ContainerID string
	Rootfs      []*apitypes.Mount
	Stdin       string
	Stdout      string
	Stderr      string
	Terminal    bool
	Checkpoint  *apitypes.Descriptor
	Options     *anypb.Any
}

func (l *local) Create(ctx context.Context, r CreateRequest) (*v2.Task, error) {
	if err := identifiers.Validate(r.ContainerID); err != nil {
		return nil, err
	}
	if r.Checkpoint != nil {
		return nil, fmt.Errorf("create task %q: restoring from a checkpoint: %w", r.ContainerID, errdefs.ErrNotImplemented)
	}
	c, err := l.containers.Get(ctx, r.ContainerID)
	if err != nil {
		return nil, err
	}
	if c.Spec == nil || len(c.Spec.Value) == 0 {
		return nil, fmt.Errorf("container %q has no runtime spec: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	// The spec Any holds the runtime spec as JSON (containerd's type URL);
	// it becomes config.json unchanged.
	if !typeurl.IsSpec(c.Spec) {
		return nil, fmt.Errorf("container %q: spec has type %q, not a runtime spec: %w", c.ID, c.Spec.TypeUrl, errdefs.ErrInvalidArgument)
	}
	for _, m := range r.Rootfs {
		if m == nil || m.Type == "" {
			return nil, fmt.Errorf("create task %q: rootfs mount without a type: %w", c.ID, errdefs.ErrInvalidArgument)
		}
	}
	return l.manager.Create(ctx, c.ID, c.Runtime.Name, v2.CreateOpts{
		Spec:   c.Spec.Value,
		Rootfs: r.Rootfs, Terminal: r.Terminal,
		Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr,
		RuntimeOptions: c.Runtime.Options,
		TaskOptions:    r.Options,
	})
}

// Process describes a task or exec process as the API reports it.
func process(t *v2.Task, st *taskapi.StateResponse) *tasktypes.Process {
	p := &tasktypes.Process{
		ContainerId: t.ID, Id: t.ID, Pid: st.Pid, Status: st.Status,
		Stdin: st.Stdin, Stdout: st.Stdout, Stderr: st.Stderr, Terminal: st.Terminal,
		ExitStatus: st.ExitStatus, ExitedAt: st.ExitedAt,
	}
	if st.ExecId != "" {
		p.Id = st.ExecId
	}
	return p
}

func (l *local) Get(ctx context.Context, id, execID string) (*tasktypes.Process, error) {
	t, err := l.manager.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	st, err := t.State(ctx, execID)
	if err != nil {
		return nil, err
	}
	return process(t, st), nil
}

func (l *local) List(ctx context.Context) ([]*tasktypes.Process, error) {
	ts, err := l.manager.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*tasktypes.Process, 0, len(ts))
	for _, t := range ts {
		st, err := t.State(ctx, "")
		if err != nil {
			// A task whose shim just went away is reported by its
			// exit event; listing the rest must not fail for it.
			continue
		}
		out = append(out, process(t, st))
	}
	return out, nil
}

func (l *local) Delete(ctx context.Context, id string) (*v2.DeleteResult, error) {
	t, err := l.manager.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	st, err := t.State(ctx, "")
	if err == nil && st.Status != tasktypes.Status_STOPPED && st.Status != tasktypes.Status_CREATED {
		return nil, fmt.Errorf("task %q must be stopped before deletion: %s: %w", id, st.Status, errdefs.ErrFailedPrecondition)
	}
	return l.manager.Delete(ctx, id)
}

func (l *local) Metrics(ctx context.Context, exprs []string) ([]*apitypes.Metric, error) {
	f, err := filters.ParseAll(exprs...)
	if err != nil {
		return nil, err
	}
	ts, err := l.manager.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []*apitypes.Metric
	for _, t := range ts {
		if !f.Match(filters.AdapterFunc(func(fp []string) (string, bool) {
			if len(fp) == 1 && fp[0] == "id" {
				return t.ID, true
			}
			return "", false
		})) {
			continue
		}
		stats, err := t.Stats(ctx)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue
			}
			return nil, err
		}
		out = append(out, &apitypes.Metric{Timestamp: timestamppb.New(time.Now()), Id: t.ID, Data: stats})
	}
	return out, nil
}
