// Package tasks serves containerd.services.tasks.v1.Tasks on the v2
// runtime: a thin translation onto local.go and the task manager.
package tasks

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	api "github.com/berth-containers/berth/api/services/tasks/v1"
	"github.com/berth-containers/berth/pkg/errdefs"
)

type service struct {
	api.UnimplementedTasksServer
	local *local
}

func (s *service) Register(srv *grpc.Server) error {
	api.RegisterTasksServer(srv, s)
	return nil
}

func (s *service) Create(ctx context.Context, r *api.CreateTaskRequest) (*api.CreateTaskResponse, error) {
	t, err := s.local.Create(ctx, CreateRequest{
		ContainerID: r.ContainerId, Rootfs: r.Rootfs,
		Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal,
		Checkpoint: r.Checkpoint, Options: r.Options,
	})
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.CreateTaskResponse{ContainerId: t.ID, Pid: t.Pid}, nil
}

func (s *service) Start(ctx context.Context, r *api.StartRequest) (*api.StartResponse, error) {
	t, err := s.local.manager.Get(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	pid, err := t.Start(ctx, r.ExecId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.StartResponse{Pid: pid}, nil
}

func (s *service) Delete(ctx context.Context, r *api.DeleteTaskRequest) (*api.DeleteResponse, error) {
	res, err := s.local.Delete(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.DeleteResponse{Id: r.ContainerId, Pid: res.Pid, ExitStatus: res.ExitStatus, ExitedAt: timestamppb.New(res.ExitedAt)}, nil
}

func (s *service) DeleteProcess(ctx context.Context, r *api.DeleteProcessRequest) (*api.DeleteResponse, error) {
	if r.ExecId == "" {
		return nil, errdefs.ToGRPC(fmt.Errorf("delete process: exec id is required: %w", errdefs.ErrInvalidArgument))
	}
	t, err := s.local.manager.Get(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	res, err := t.DeleteProcess(ctx, r.ExecId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.DeleteResponse{Id: r.ExecId, Pid: res.Pid, ExitStatus: res.ExitStatus, ExitedAt: timestamppb.New(res.ExitedAt)}, nil
}

func (s *service) Get(ctx context.Context, r *api.GetRequest) (*api.GetResponse, error) {
	p, err := s.local.Get(ctx, r.ContainerId, r.ExecId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.GetResponse{Process: p}, nil
}

func (s *service) List(ctx context.Context, r *api.ListTasksRequest) (*api.ListTasksResponse, error) {
	ps, err := s.local.List(ctx)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.ListTasksResponse{Tasks: ps}, nil
}

func (s *service) Kill(ctx context.Context, r *api.KillRequest) (*emptypb.Empty, error) {
	t, err := s.local.manager.Get(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if err := t.Kill(ctx, r.ExecId, r.Signal, r.All); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) Exec(ctx context.Context, r *api.ExecProcessRequest) (*emptypb.Empty, error) {
	if r.ExecId == "" {
		return nil, errdefs.ToGRPC(fmt.Errorf("exec: exec id is required: %w", errdefs.ErrInvalidArgument))
	}
	if r.Spec == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("exec %q: process spec is required: %w", r.ExecId, errdefs.ErrInvalidArgument))
	}
	t, err := s.local.manager.Get(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if err := t.Exec(ctx, &taskapi.ExecProcessRequest{
		ExecId: r.ExecId, Terminal: r.Terminal, Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Spec: r.Spec,
	}); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) ResizePty(ctx context.Context, r *api.ResizePtyRequest) (*emptypb.Empty, error) {
	t, err := s.local.manager.Get(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if err := t.ResizePty(ctx, r.ExecId, r.Width, r.Height); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) CloseIO(ctx context.Context, r *api.CloseIORequest) (*emptypb.Empty, error) {
	t, err := s.local.manager.Get(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if err := t.CloseIO(ctx, r.ExecId, r.Stdin); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) Pause(ctx context.Context, r *api.PauseTaskRequest) (*emptypb.Empty, error) {
	t, err := s.local.manager.Get(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if err := t.Pause(ctx); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) Resume(ctx context.Context, r *api.ResumeTaskRequest) (*emptypb.Empty, error) {
	t, err := s.local.manager.Get(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if err := t.Resume(ctx); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) ListPids(ctx context.Context, r *api.ListPidsRequest) (*api.ListPidsResponse, error) {
	t, err := s.local.manager.Get(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	ps, err := t.Pids(ctx)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.ListPidsResponse{Processes: ps}, nil
}

func (s *service) Checkpoint(ctx context.Context, r *api.CheckpointTaskRequest) (*api.CheckpointTaskResponse, error) {
	return nil, errdefs.ToGRPC(fmt.Errorf("checkpoint task %q: %w", r.ContainerId, errdefs.ErrNotImplemented))
}

func (s *service) Update(ctx context.Context, r *api.UpdateTaskRequest) (*emptypb.Empty, error) {
	t, err := s.local.manager.Get(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if err := t.Update(ctx, r.Resources, r.Annotations); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) Metrics(ctx context.Context, r *api.MetricsRequest) (*api.MetricsResponse, error) {
	ms, err := s.local.Metrics(ctx, r.Filters)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.MetricsResponse{Metrics: ms}, nil
}

func (s *service) Wait(ctx context.Context, r *api.WaitRequest) (*api.WaitResponse, error) {
	t, err := s.local.manager.Get(ctx, r.ContainerId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	status, at, err := t.Wait(ctx, r.ExecId)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.WaitResponse{ExitStatus: status, ExitedAt: timestamppb.New(at)}, nil
}
