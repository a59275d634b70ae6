// Package service is the shim's containerd.task.v2.Task ttrpc service: it
// keeps the shim's tasks (usually one container), drives their processes
// through runc and publishes their events to the daemon.
package service

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	apievents "github.com/berth-containers/berth/api/events"
	"github.com/berth-containers/berth/api/runtime/runc/options"
	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	apitask "github.com/berth-containers/berth/api/types/task"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/typeurl"
	"github.com/berth-containers/berth/runtime/v2/shim/process"
	"github.com/berth-containers/berth/runtime/v2/shim/reaper"
	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Version is what Connect reports.
const Version = "berth-shim-v2"

var empty = &emptypb.Empty{}

// Service implements taskapi.TaskService.
type Service struct {
	ns        string
	publisher Publisher
	shutdown  func()
	tracker   *process.Tracker

	mu         sync.Mutex
	containers map[string]*container
	creating   map[string]bool
	// teardown counts deleted containers whose runc delete and rootfs
	// release still run in the background (see Delete).
	teardown sync.WaitGroup
}

var _ taskapi.TaskService = (*Service)(nil)

// New returns the service of a shim serving namespace ns. shutdown is
// called when the daemon asks the shim to exit and no task is left.
func New(ns string, publisher Publisher, shutdown func()) *Service {
	s := &Service{
		ns:         ns,
		publisher:  publisher,
		shutdown:   shutdown,
		containers: map[string]*container{},
		creating:   map[string]bool{},
	}
	s.tracker = process.NewTracker(reaper.Default, s.onExit)
	return s
}

// Close waits for deleted containers' teardown, then stops routing exits.
func (s *Service) Close() {
	s.teardown.Wait()
	s.tracker.Close()
}

// namespace is the request's namespace, else the shim's.
func (s *Service) namespace(ctx context.Context) string {
	if ns, ok := namespaces.Namespace(ctx); ok && ns != "" {
		return ns
	}
	return s.ns
}

func (s *Service) publish(ns string, event proto.Message) {
	if s.publisher != nil {
		s.publisher.Publish(namespaces.WithNamespace(context.Background(), ns), event)
	}
}

func (s *Service) get(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return nil, errdefs.ToGRPC(fmt.Errorf("task %q: %w", id, errdefs.ErrNotFound))
	}
	return c, nil
}

func (s *Service) getProcess(id, execID string) (*container, process.Process, error) {
	c, err := s.get(id)
	if err != nil {
		return nil, nil, err
	}
	p, err := c.process(execID)
	if err != nil {
		return nil, nil, errdefs.ToGRPC(err)
	}
	return c, p, nil
}

func toGRPC(err error) error {
	if err == nil {
		return nil
	}
	return errdefs.ToGRPC(err)
}

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// Create creates the task's container with runc create.
func (s *Service) Create(ctx context.Context, r *taskapi.CreateTaskRequest) (*taskapi.CreateTaskResponse, error) {
	if err := identifiers.Validate(r.Id); err != nil {
		return nil, toGRPC(fmt.Errorf("task id: %w", err))
	}
	if r.Bundle == "" {
		return nil, toGRPC(fmt.Errorf("task %q: no bundle: %w", r.Id, errdefs.ErrInvalidArgument))
	}
	ns := s.namespace(ctx)
	ctx = log.WithLogger(namespaces.WithNamespace(ctx, ns), log.G(ctx).WithField("id", r.Id))

	s.mu.Lock()
	if _, ok := s.containers[r.Id]; ok || s.creating[r.Id] {
		s.mu.Unlock()
		return nil, toGRPC(fmt.Errorf("task %q: %w", r.Id, errdefs.ErrAlreadyExists))
	}
	s.creating[r.Id] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.creating, r.Id)
		s.mu.Unlock()
	}()

	c, started, err := s.newContainer(ctx, r, ns)
	if err != nil {
		return nil, toGRPC(err)
	}
	s.watch(ctx, c)
	s.mu.Lock()
	s.containers[r.Id] = c
	s.mu.Unlock()
	pid := uint32(c.init.Pid())
	s.publish(ns, &apievents.TaskCreate{
		ContainerId: r.Id,
		Bundle:      r.Bundle,
		Rootfs:      r.Rootfs,
		Io:          &apievents.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
		Checkpoint:  r.Checkpoint,
		Pid:         pid,
	})
	started(c.init)
	return &taskapi.CreateTaskResponse{Pid: pid}, nil
}

// Start starts the init (runc start) or an exec (runc exec).
func (s *Service) Start(ctx context.Context, r *taskapi.StartRequest) (*taskapi.StartResponse, error) {
	c, p, err := s.getProcess(r.Id, r.ExecId)
	if err != nil {
		return nil, err
	}
	ns := c.ns
	ctx = namespaces.WithNamespace(ctx, ns)
	// Bracketed so the process's exit event cannot overtake its start
	// event.
	started := s.tracker.Starting()
	if err := p.Start(ctx); err != nil {
		started(nil)
		return nil, toGRPC(err)
	}
	pid := uint32(p.Pid())
	if r.ExecId == "" {
		s.publish(ns, &apievents.TaskStart{ContainerId: c.id, Pid: pid})
	} else {
		s.publish(ns, &apievents.TaskExecStarted{ContainerId: c.id, ExecId: r.ExecId, Pid: pid})
	}
	started(p)
	return &taskapi.StartResponse{Pid: pid}, nil
}

// Delete deletes an exited exec, or the container (runc delete, rootfs
// unmounted if the shim mounted it).
//
// For a container whose init already exited, Delete answers as soon as the
// exit status is final and the rootfs is detached from the mount table;
// `runc delete` and the rootfs's superblock teardown (which syncs the
// overlay's upper file system, milliseconds or far more when the disk is
// busy) finish in the background. Shutdown waits for them, so whoever
// removes the bundle after Shutdown (our daemon, or containerd) finds
// runc done with it.
func (s *Service) Delete(ctx context.Context, r *taskapi.DeleteRequest) (*taskapi.DeleteResponse, error) {
	c, p, err := s.getProcess(r.Id, r.ExecId)
	if err != nil {
		return nil, err
	}
	if r.ExecId != "" {
		if err := p.Delete(ctx); err != nil {
			return nil, toGRPC(err)
		}
		c.mu.Lock()
		delete(c.execs, r.ExecId)
		c.mu.Unlock()
		return &taskapi.DeleteResponse{Pid: uint32(p.Pid()), ExitStatus: uint32(p.ExitStatus()), ExitedAt: ts(p.ExitedAt())}, nil
	}
	finish, err := c.init.DeleteDeferred(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	resp := &taskapi.DeleteResponse{Pid: uint32(p.Pid()), ExitStatus: uint32(p.ExitStatus()), ExitedAt: ts(p.ExitedAt())}
	if resp.Pid != 0 {
		// The init's exit is published first: the tracker does that just
		// after Wait could answer, and finds the container for it in
		// s.containers, so it must still be there.
		select {
		case <-c.exited:
		case <-time.After(2 * time.Second):
		}
	}
	if c.stopOOM != nil {
		c.stopOOM()
	}
	release := c.detachRootfs(ctx)
	s.mu.Lock()
	delete(s.containers, c.id)
	s.mu.Unlock()
	s.teardown.Add(1)
	go func() {
		defer s.teardown.Done()
		lowPriorityThread()
		ctx := context.WithoutCancel(ctx)
		if err := finish(ctx); err != nil {
			log.G(ctx).WithError(err).WithField("id", c.id).Warn("runc delete")
		}
		release()
	}()
	// As containerd's shims: the init's delete event names the container
	// only (Id is for an exec's).
	s.publish(c.ns, &apievents.TaskDelete{
		ContainerId: c.id, Pid: resp.Pid, ExitStatus: resp.ExitStatus, ExitedAt: resp.ExitedAt,
	})
	return resp, nil
}

// State reports a process.
func (s *Service) State(ctx context.Context, r *taskapi.StateRequest) (*taskapi.StateResponse, error) {
	c, p, err := s.getProcess(r.Id, r.ExecId)
	if err != nil {
		return nil, err
	}
	status := apitask.Status_UNKNOWN
	switch p.Status() {
	case process.Created:
		status = apitask.Status_CREATED
	case process.Running:
		status = apitask.Status_RUNNING
	case process.Paused:
		status = apitask.Status_PAUSED
	case process.Stopped, process.Deleted:
		status = apitask.Status_STOPPED
	}
	sio := p.Stdio()
	return &taskapi.StateResponse{
		Id:         p.ID(),
		Bundle:     c.bundle,
		Pid:        uint32(p.Pid()),
		Status:     status,
		Stdin:      sio.Stdin,
		Stdout:     sio.Stdout,
		Stderr:     sio.Stderr,
		Terminal:   sio.Terminal,
		ExitStatus: uint32(p.ExitStatus()),
		ExitedAt:   ts(p.ExitedAt()),
		ExecId:     r.ExecId,
	}, nil
}

// Pids lists the container's processes; execs carry their exec id.
func (s *Service) Pids(ctx context.Context, r *taskapi.PidsRequest) (*taskapi.PidsResponse, error) {
	c, err := s.get(r.Id)
	if err != nil {
		return nil, err
	}
	pids, err := c.init.Pids(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	resp := &taskapi.PidsResponse{}
	for _, pid := range pids {
		info := &apitask.ProcessInfo{Pid: uint32(pid)}
		if execID, ok := c.execByPid(pid); ok {
			a, err := typeurl.MarshalAny(&options.ProcessDetails{ExecId: execID})
			if err != nil {
				return nil, toGRPC(fmt.Errorf("process %d info: %w", pid, err))
			}
			info.Info = a
		}
		resp.Processes = append(resp.Processes, info)
	}
	return resp, nil
}

// Pause freezes the container.
func (s *Service) Pause(ctx context.Context, r *taskapi.PauseRequest) (*emptypb.Empty, error) {
	c, err := s.get(r.Id)
	if err != nil {
		return nil, err
	}
	if err := c.init.Pause(ctx); err != nil {
		return nil, toGRPC(err)
	}
	s.publish(c.ns, &apievents.TaskPaused{ContainerId: c.id})
	return empty, nil
}

// Resume thaws the container.
func (s *Service) Resume(ctx context.Context, r *taskapi.ResumeRequest) (*emptypb.Empty, error) {
	c, err := s.get(r.Id)
	if err != nil {
		return nil, err
	}
	if err := c.init.Resume(ctx); err != nil {
		return nil, toGRPC(err)
	}
	s.publish(c.ns, &apievents.TaskResumed{ContainerId: c.id})
	return empty, nil
}

// Checkpoint is not supported.
func (s *Service) Checkpoint(ctx context.Context, r *taskapi.CheckpointTaskRequest) (*emptypb.Empty, error) {
	return nil, toGRPC(fmt.Errorf("checkpoint: %w", errdefs.ErrNotImplemented))
}

// Kill signals a process; all reaches every process of the container.
func (s *Service) Kill(ctx context.Context, r *taskapi.KillRequest) (*emptypb.Empty, error) {
	_, p, err := s.getProcess(r.Id, r.ExecId)
	if err != nil {
		return nil, err
	}
	if err := p.Kill(ctx, int(r.Signal), r.All); err != nil {
		return nil, toGRPC(err)
	}
	return empty, nil
}

// Exec adds a process to the container; Start runs it.
func (s *Service) Exec(ctx context.Context, r *taskapi.ExecProcessRequest) (*emptypb.Empty, error) {
	c, err := s.get(r.Id)
	if err != nil {
		return nil, err
	}
	spec, err := decodeProcess(r.Spec)
	if err != nil {
		return nil, toGRPC(err)
	}
	spec.Terminal = r.Terminal || spec.Terminal
	e, err := c.init.NewExec(r.ExecId, spec, process.Stdio{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal})
	if err != nil {
		return nil, toGRPC(err)
	}
	c.mu.Lock()
	if _, ok := c.execs[r.ExecId]; ok {
		c.mu.Unlock()
		return nil, toGRPC(fmt.Errorf("exec %q of task %q: %w", r.ExecId, c.id, errdefs.ErrAlreadyExists))
	}
	c.execs[r.ExecId] = e
	c.mu.Unlock()
	s.publish(c.ns, &apievents.TaskExecAdded{ContainerId: c.id, ExecId: r.ExecId})
	return empty, nil
}

// decodeProcess reads the exec's OCI process, which containerd's clients
// send as JSON under the runtime-spec type URL.
func decodeProcess(a *anypb.Any) (*specs.Process, error) {
	if a == nil || len(a.Value) == 0 {
		return nil, fmt.Errorf("exec: no process spec: %w", errdefs.ErrInvalidArgument)
	}
	if !strings.HasSuffix(a.TypeUrl, "/Process") {
		return nil, fmt.Errorf("exec: spec of type %q, want an OCI Process: %w", a.TypeUrl, errdefs.ErrInvalidArgument)
	}
	var p specs.Process
	if err := json.Unmarshal(a.Value, &p); err != nil {
		return nil, fmt.Errorf("exec: decode process spec: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return &p, nil
}

// ResizePty sets a process's terminal size.
func (s *Service) ResizePty(ctx context.Context, r *taskapi.ResizePtyRequest) (*emptypb.Empty, error) {
	_, p, err := s.getProcess(r.Id, r.ExecId)
	if err != nil {
		return nil, err
	}
	if err := p.Resize(console.WinSize{Width: uint16(r.Width), Height: uint16(r.Height)}); err != nil {
		return nil, toGRPC(err)
	}
	return empty, nil
}

// CloseIO closes a process's stdin.
func (s *Service) CloseIO(ctx context.Context, r *taskapi.CloseIORequest) (*emptypb.Empty, error) {
	_, p, err := s.getProcess(r.Id, r.ExecId)
	if err != nil {
		return nil, err
	}
	if r.Stdin {
		if err := p.CloseStdin(); err != nil {
			return nil, toGRPC(err)
		}
	}
	return empty, nil
}

// Update changes the container's resources (an OCI LinuxResources as JSON).
func (s *Service) Update(ctx context.Context, r *taskapi.UpdateTaskRequest) (*emptypb.Empty, error) {
	c, err := s.get(r.Id)
	if err != nil {
		return nil, err
	}
	if r.Resources == nil || !strings.HasSuffix(r.Resources.TypeUrl, "/LinuxResources") {
		return nil, toGRPC(fmt.Errorf("update: resources must be OCI LinuxResources: %w", errdefs.ErrInvalidArgument))
	}
	var res specs.LinuxResources
	if err := json.Unmarshal(r.Resources.Value, &res); err != nil {
		return nil, toGRPC(fmt.Errorf("update: decode resources: %w: %w", err, errdefs.ErrInvalidArgument))
	}
	if err := c.init.Update(ctx, &res); err != nil {
		return nil, toGRPC(err)
	}
	return empty, nil
}

// Wait blocks until the process exits.
func (s *Service) Wait(ctx context.Context, r *taskapi.WaitRequest) (*taskapi.WaitResponse, error) {
	_, p, err := s.getProcess(r.Id, r.ExecId)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		return nil, toGRPC(ctx.Err())
	}
	return &taskapi.WaitResponse{ExitStatus: uint32(p.ExitStatus()), ExitedAt: ts(p.ExitedAt())}, nil
}

// Stats returns the container's cgroup metrics
// (io.containerd.cgroups.v1.Metrics or .v2.Metrics).
func (s *Service) Stats(ctx context.Context, r *taskapi.StatsRequest) (*taskapi.StatsResponse, error) {
	c, err := s.get(r.Id)
	if err != nil {
		return nil, err
	}
	if c.cgroup == nil {
		return nil, toGRPC(fmt.Errorf("task %q: cgroup not found: %w", c.id, errdefs.ErrNotFound))
	}
	m, err := c.cgroup.Metrics()
	if err != nil {
		return nil, toGRPC(err)
	}
	a, err := typeurl.MarshalAny(m)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &taskapi.StatsResponse{Stats: a}, nil
}

// Connect reports the shim's and the task's pids.
func (s *Service) Connect(ctx context.Context, r *taskapi.ConnectRequest) (*taskapi.ConnectResponse, error) {
	resp := &taskapi.ConnectResponse{ShimPid: uint32(os.Getpid()), Version: Version}
	s.mu.Lock()
	if c, ok := s.containers[r.Id]; ok {
		resp.TaskPid = uint32(c.init.Pid())
	}
	s.mu.Unlock()
	return resp, nil
}

// Shutdown makes the shim exit once it serves no task (or now, if asked).
func (s *Service) Shutdown(ctx context.Context, r *taskapi.ShutdownRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	n := len(s.containers) + len(s.creating)
	s.mu.Unlock()
	if n > 0 && !r.Now {
		return empty, nil
	}
	// Deleted containers' runc delete and rootfs teardown end first: the
	// caller removes the bundle once we answer.
	s.teardown.Wait()
	if s.shutdown != nil {
		s.shutdown()
	}
	return empty, nil
}

// onExit runs on the tracker's goroutine for each exit of a process of
// ours: a container without its own pid namespace loses the rest of its
// processes with its init, then the exit is published.
func (s *Service) onExit(p process.Process, e reaper.Exit) {
	var c *container
	s.mu.Lock()
	for _, cc := range s.containers {
		if cc.init == p {
			c = cc
			break
		}
		cc.mu.Lock()
		for _, ex := range cc.execs {
			if process.Process(ex) == p {
				c = cc
			}
		}
		cc.mu.Unlock()
		if c != nil {
			break
		}
	}
	s.mu.Unlock()
	if c == nil {
		return
	}
	ctx := namespaces.WithNamespace(context.Background(), c.ns)
	if c.init == p && c.killAll {
		if err := c.init.KillAll(ctx); err != nil {
			log.G(ctx).WithError(err).WithField("id", c.id).Warn("kill processes left after init exit")
		}
	}
	s.publish(c.ns, &apievents.TaskExit{
		ContainerId: c.id,
		Id:          p.ID(),
		Pid:         uint32(e.Pid),
		ExitStatus:  uint32(e.Status),
		ExitedAt:    ts(p.ExitedAt()),
	})
	if c.init == p {
		close(c.exited)
	}
}
