package runc

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// CreateOpts are the options of runc create.
type CreateOpts struct {
	// PidFile receives the container init's pid.
	PidFile string
	// ConsoleSocket is the unix socket runc sends the pty master to, for a
	// terminal container.
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	// IO is the container's stdio.
	IO *IO
	// ExtraFiles are passed on as fds 3 and up (runc's --preserve-fds is
	// added for them).
	ExtraFiles []*os.File
}

// Create runs `runc create`: the container exists with its init waiting to
// be started.
func (r *Runc) Create(ctx context.Context, id, bundle string, opts CreateOpts) error {
	args := []string{"create", "--bundle", bundle}
	if opts.PidFile != "" {
		args = append(args, "--pid-file", opts.PidFile)
	}
	if opts.ConsoleSocket != "" {
		args = append(args, "--console-socket", opts.ConsoleSocket)
	}
	if opts.NoPivot {
		args = append(args, "--no-pivot")
	}
	if opts.NoNewKeyring {
		args = append(args, "--no-new-keyring")
	}
	if n := len(opts.ExtraFiles); n > 0 {
		args = append(args, "--preserve-fds", strconv.Itoa(n))
	}
	args = append(args, id)
	return r.runIO(ctx, opts.IO, opts.ExtraFiles, args...)
}

// Start runs `runc start`: the created init execs the user's process.
func (r *Runc) Start(ctx context.Context, id string) error {
	_, err := r.runOutput(ctx, nil, "start", id)
	return err
}

// ExecOpts are the options of runc exec.
type ExecOpts struct {
	PidFile       string
	ConsoleSocket string
	// Detach returns once the process runs instead of when it exits.
	Detach bool
	IO     *IO
}

// Exec runs spec in the container with `runc exec --process`. The process
// description goes through a file, which is removed afterwards.
func (r *Runc) Exec(ctx context.Context, id string, spec specs.Process, opts ExecOpts) error {
	f, err := os.CreateTemp("", "runc-process-*.json")
	if err != nil {
		return fmt.Errorf("runc exec: write process spec: %w", err)
	}
	defer os.Remove(f.Name())
	err = json.NewEncoder(f).Encode(spec)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("runc exec: write process spec: %w", err)
	}
	return r.ExecFile(ctx, id, f.Name(), opts)
}

// ExecFile is Exec with the process description already in a file (the shim
// keeps it in the bundle).
func (r *Runc) ExecFile(ctx context.Context, id, processJSON string, opts ExecOpts) error {
	args := []string{"exec", "--process", processJSON}
	if opts.Detach {
		args = append(args, "--detach")
	}
	if opts.PidFile != "" {
		args = append(args, "--pid-file", opts.PidFile)
	}
	if opts.ConsoleSocket != "" {
		args = append(args, "--console-socket", opts.ConsoleSocket)
	}
	args = append(args, id)
	return r.runIO(ctx, opts.IO, nil, args...)
}

// Kill sends sig to the container's init, or with all to every process in
// it.
func (r *Runc) Kill(ctx context.Context, id string, sig int, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := r.runOutput(ctx, nil, append(args, id, strconv.Itoa(sig))...)
	return err
}

// Delete removes the container; force kills it first if it runs.
func (r *Runc) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	_, err := r.runOutput(ctx, nil, append(args, id)...)
	return err
}

// Pause freezes every process of the container.
func (r *Runc) Pause(ctx context.Context, id string) error {
	_, err := r.runOutput(ctx, nil, "pause", id)
	return err
}

// Resume thaws a paused container.
func (r *Runc) Resume(ctx context.Context, id string) error {
	_, err := r.runOutput(ctx, nil, "resume", id)
	return err
}

// Update changes the container's resource limits.
func (r *Runc) Update(ctx context.Context, id string, resources *specs.LinuxResources) error {
	data, err := json.Marshal(resources)
	if err != nil {
		return fmt.Errorf("runc update: encode resources: %w", err)
	}
	// The resources go in on stdin from a memory file: a pipe would need a
	// writer running beside runc.
	in, err := memfile("runc-resources")
	if err != nil {
		return fmt.Errorf("runc update: %w", err)
	}
	defer in.Close()
	if _, err := in.Write(data); err != nil {
		return fmt.Errorf("runc update: write resources: %w", err)
	}
	if _, err := in.Seek(0, 0); err != nil {
		return fmt.Errorf("runc update: write resources: %w", err)
	}
	_, err = r.runOutput(ctx, in, "update", "--resources", "-", id)
	return err
}

// State is what `runc state` reports.
type State struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// State returns the container's state: created, running, paused or stopped.
func (r *Runc) State(ctx context.Context, id string) (*State, error) {
	out, err := r.runOutput(ctx, nil, "state", id)
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("runc state: decode %q: %w", out, err)
	}
	return &s, nil
}

// Ps returns the pids of every process in the container.
func (r *Runc) Ps(ctx context.Context, id string) ([]int, error) {
	out, err := r.runOutput(ctx, nil, "ps", "--format", "json", id)
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("runc ps: decode %q: %w", out, err)
	}
	return pids, nil
}
