package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/console"
	"github.com/containerd/ttrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	"github.com/berth-containers/berth/cio"
	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
	"github.com/berth-containers/berth/pkg/typeurl"
)

// `ctr shim` talks ttrpc (containerd.task.v2.Task) straight to the shim
// of one container, bypassing berthd, as containerd 1.6's does: for
// debugging a shim, not for managing tasks (berthd is not told, so what
// it shows may then be stale).
//
// The shim is found as follows, first answer wins:
//  1. the "address" file of the task's bundle under berthd's state dir,
//     <state>/io.containerd.runtime.v2.task/<namespace>/<id>/address, which
//     every shim (ours, containerd-shim-runc-v2) writes or has written for
//     it. --state names the state dir; by default the folder of --address
//     and berthd's default, /run/berth, are tried.
//  2. the socket path both shims derive from the daemon address, the
//     namespace and the id (sha256 of "<address>/<namespace>/<id>"): in
//     /run/berth/s for ours, /run/containerd/s for containerd's, which is
//     the only place containerd's ctr looks.
//  3. containerd's old abstract socket, @/containerd-shim/<ns>/<id>/shim.sock.
func init() {
	extraCommands = append(extraCommands, shimCommand)
}

const (
	// runtimeStateDir is the v2 task runtime's folder under the daemon's
	// state dir (the plugin's URI, as in containerd).
	runtimeStateDir = "io.containerd.runtime.v2.task"
	// berthShimSocketDir and containerdShimSocketDir hold the shims'
	// sockets (runtime/v2/shim.SocketDir for ours).
	berthShimSocketDir      = "/run/berth/s"
	containerdShimSocketDir = "/run/containerd/s"
	shimDialTimeout         = 5 * time.Second
)

var shimCommand = &cli.Command{
	Name:  "shim",
	Usage: "interact with a shim directly",
	Description: `Talk to the shim of one container over its ttrpc socket, bypassing berthd.
The shim is found through the address file of the task's bundle under berthd's
state dir (--state; by default the folder of --address, then /run/berth), else
at the socket path the shims derive from --address, the namespace and the id.
Start, delete and state act on the container's init process, or on the exec
process whose id is given.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "id", Usage: "container id"},
		&cli.StringFlag{Name: "state", Usage: "berthd's state directory (default: the folder of --address, then /run/berth)",
			EnvVars: []string{"BERTH_STATE"}},
	},
	Subcommands: []*cli.Command{
		{
			Name:      "delete",
			Usage:     "delete a container with a task",
			ArgsUsage: "[exec-id]",
			Action:    shimDelete,
		},
		{
			Name:      "exec",
			Usage:     "exec a new process in the task's container",
			ArgsUsage: "<exec-id> [command [args...]]",
			Description: `Create and start an exec process in the container. Its process is the
--spec file (a runtime-spec process as JSON) or, without one, the container's
own process from the bundle's config.json; a command after the exec id
replaces its args, --env adds to its environment, --cwd sets its directory.
Without --stdin/--stdout/--stderr the process has no IO (containerd's shim
wants both --stdout and --stderr, or neither, without --tty); the FIFOs named
are created if missing, and with --attach ctr copies between them and its own
standard streams until the process's output ends.`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "stdin", Usage: "specify the path to the stdin fifo"},
				&cli.StringFlag{Name: "stdout", Usage: "specify the path to the stdout fifo"},
				&cli.StringFlag{Name: "stderr", Usage: "specify the path to the stderr fifo"},
				&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "enable tty support"},
				&cli.BoolFlag{Name: "attach", Aliases: []string{"a"}, Usage: "stay attached to the container and open the fifos"},
				&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "add environment vars"},
				&cli.StringFlag{Name: "cwd", Usage: "current working directory"},
				&cli.StringFlag{Name: "spec", Usage: "runtime spec"},
			},
			Action: shimExec,
		},
		{
			Name:      "start",
			Usage:     "start a container with a task",
			ArgsUsage: "[exec-id]",
			Action:    shimStart,
		},
		{
			Name:      "state",
			Usage:     "get the state of all the processes of the task",
			ArgsUsage: "[exec-id]",
			Action:    shimState,
		},
	},
}

// shimConn is a ttrpc connection to one container's shim.
type shimConn struct {
	id     string
	svc    taskapi.TaskService
	client *ttrpc.Client
}

func (s *shimConn) Close() error { return s.client.Close() }

// execID is the exec process an argument names: none for the container's
// id (containerd's ctr takes the container id as the argument).
func (s *shimConn) execID(c *cli.Context) string {
	if arg := c.Args().First(); arg != s.id {
		return arg
	}
	return ""
}

// connectShim finds and dials the shim of the container named by --id.
func connectShim(c *cli.Context) (*shimConn, context.Context, context.CancelFunc, error) {
	id := c.String("id")
	if id == "" {
		return nil, nil, nil, fmt.Errorf("container id must be specified (--id): %w", errdefs.ErrInvalidArgument)
	}
	ns := c.String("namespace")
	if err := identifiers.Validate(id); err != nil {
		return nil, nil, nil, fmt.Errorf("container id: %w", err)
	}
	if err := identifiers.Validate(ns); err != nil {
		return nil, nil, nil, fmt.Errorf("namespace: %w", err)
	}
	ctx, cancel := appContext(c)
	var tried []string
	for _, cand := range shimCandidates(c.String("state"), c.String("address"), ns, id) {
		socket := cand.socket
		if cand.file != "" {
			data, err := os.ReadFile(cand.file)
			if err != nil || len(data) == 0 {
				tried = append(tried, cand.file)
				continue
			}
			socket = strings.TrimPrefix(strings.TrimSpace(string(data)), "unix://")
		}
		var d net.Dialer
		dctx, dcancel := context.WithTimeout(ctx, shimDialTimeout)
		conn, err := d.DialContext(dctx, "unix", socket)
		dcancel()
		if err != nil {
			logrus.WithError(err).Debugf("shim socket %q", socket)
			tried = append(tried, strings.ReplaceAll(socket, "\x00", "@"))
			continue
		}
		logrus.Debugf("connected to shim at %q", socket)
		cl := ttrpc.NewClient(conn)
		return &shimConn{id: id, svc: taskapi.NewTaskClient(cl), client: cl}, ctx, cancel, nil
	}
	cancel()
	return nil, nil, nil, fmt.Errorf("fail to connect to container %q's shim in namespace %q (tried %s): %w",
		id, ns, strings.Join(tried, ", "), errdefs.ErrNotFound)
}

// shimCandidate is a place a shim's socket may be found: an address file
// naming it, or the socket itself.
type shimCandidate struct{ file, socket string }

// shimCandidates lists where the shim of ns/id may be, in the order they
// are tried (see the comment at the top of this file).
func shimCandidates(state, address, ns, id string) []shimCandidate {
	var out []shimCandidate
	seen := map[string]bool{}
	add := func(c shimCandidate) {
		if k := c.file + "\n" + c.socket; !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	states := []string{state}
	if state == "" {
		states = []string{filepath.Dir(address), filepath.Dir(client.DefaultAddress)}
	}
	for _, s := range states {
		if s != "" && s != "." {
			add(shimCandidate{file: filepath.Join(s, runtimeStateDir, ns, id, "address")})
		}
	}
	d := sha256.Sum256([]byte(filepath.Join(address, ns, id)))
	name := hex.EncodeToString(d[:])
	add(shimCandidate{socket: filepath.Join(berthShimSocketDir, name)})
	add(shimCandidate{socket: filepath.Join(containerdShimSocketDir, name)})
	add(shimCandidate{socket: "\x00" + filepath.Join("/containerd-shim", ns, id, "shim.sock")})
	return out
}

// shimErr names the call that failed and maps the shim's status back to
// our error kinds.
func shimErr(op string, err error) error {
	return fmt.Errorf("shim %s: %w", op, errdefs.FromGRPC(err))
}

func shimStart(c *cli.Context) error {
	s, ctx, cancel, err := connectShim(c)
	if err != nil {
		return err
	}
	defer cancel()
	defer s.Close()
	if _, err := s.svc.Start(ctx, &taskapi.StartRequest{Id: s.id, ExecId: s.execID(c)}); err != nil {
		return shimErr("start", err)
	}
	return nil
}

func shimDelete(c *cli.Context) error {
	s, ctx, cancel, err := connectShim(c)
	if err != nil {
		return err
	}
	defer cancel()
	defer s.Close()
	execID := s.execID(c)
	r, err := s.svc.Delete(ctx, &taskapi.DeleteRequest{Id: s.id, ExecId: execID})
	if err != nil {
		return shimErr("delete", err)
	}
	if execID != "" {
		fmt.Printf("exec process %s deleted and returned exit status %d\n", execID, r.ExitStatus)
		return nil
	}
	fmt.Printf("container deleted and returned exit status %d\n", r.ExitStatus)
	return nil
}

// shimStateJSON is the StateResponse as containerd's ctr prints it: its
// fields' JSON names, status as the enum's number, exited_at always.
type shimStateJSON struct {
	ID         string    `json:"id,omitempty"`
	Bundle     string    `json:"bundle,omitempty"`
	Pid        uint32    `json:"pid,omitempty"`
	Status     int32     `json:"status,omitempty"`
	Stdin      string    `json:"stdin,omitempty"`
	Stdout     string    `json:"stdout,omitempty"`
	Stderr     string    `json:"stderr,omitempty"`
	Terminal   bool      `json:"terminal,omitempty"`
	ExitStatus uint32    `json:"exit_status,omitempty"`
	ExitedAt   time.Time `json:"exited_at"`
	ExecID     string    `json:"exec_id,omitempty"`
}

func shimState(c *cli.Context) error {
	s, ctx, cancel, err := connectShim(c)
	if err != nil {
		return err
	}
	defer cancel()
	defer s.Close()
	r, err := s.svc.State(ctx, &taskapi.StateRequest{Id: s.id, ExecId: s.execID(c)})
	if err != nil {
		return shimErr("state", err)
	}
	out := shimStateJSON{
		ID: r.Id, Bundle: r.Bundle, Pid: r.Pid, Status: int32(r.Status),
		Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal,
		ExitStatus: r.ExitStatus, ExecID: r.ExecId,
	}
	if r.ExitedAt != nil {
		out.ExitedAt = r.ExitedAt.AsTime()
	}
	return printJSON(out)
}

func shimExec(c *cli.Context) error {
	execID := c.Args().First()
	if execID == "" {
		return fmt.Errorf("exec id must be provided: %w", errdefs.ErrInvalidArgument)
	}
	if err := identifiers.Validate(execID); err != nil {
		return fmt.Errorf("exec id: %w", err)
	}
	s, ctx, cancel, err := connectShim(c)
	if err != nil {
		return err
	}
	defer cancel()
	defer s.Close()

	tty := c.Bool("tty")
	proc, err := shimExecProcess(ctx, c, s)
	if err != nil {
		return err
	}
	proc.Terminal = tty
	spec, err := typeurl.MarshalAny(proc)
	if err != nil {
		return err
	}
	fifos := cio.Config{Terminal: tty, Stdin: c.String("stdin"), Stdout: c.String("stdout"), Stderr: c.String("stderr")}
	if tty {
		// A terminal has one output stream; the shim ignores stderr.
		fifos.Stderr = ""
	}
	var attached cio.IO
	if c.Bool("attach") && (fifos.Stdin != "" || fifos.Stdout != "" || fifos.Stderr != "") {
		// Opens (creating) our ends before the shim opens its own.
		attached, err = cio.NewAttach(cio.WithStdio)(cio.NewFIFOSet(fifos, nil))
		if err != nil {
			return err
		}
		defer attached.Close()
	} else if err := makeFifos(fifos.Stdin, fifos.Stdout, fifos.Stderr); err != nil {
		return err
	}

	if _, err := s.svc.Exec(ctx, &taskapi.ExecProcessRequest{
		Id: s.id, ExecId: execID, Terminal: tty,
		Stdin: fifos.Stdin, Stdout: fifos.Stdout, Stderr: fifos.Stderr, Spec: spec,
	}); err != nil {
		if attached != nil {
			attached.Cancel()
		}
		return shimErr("exec", err)
	}
	r, err := s.svc.Start(ctx, &taskapi.StartRequest{Id: s.id, ExecId: execID})
	if err != nil {
		if attached != nil {
			attached.Cancel()
		}
		return shimErr("start", err)
	}
	fmt.Printf("exec running with pid %d\n", r.Pid)
	if attached == nil {
		return nil
	}
	logrus.Info("attaching")
	if tty {
		con := console.Current()
		if err := con.SetRaw(); err != nil {
			return fmt.Errorf("set terminal raw: %w", err)
		}
		defer con.Reset()
		stop := forwardResizes(ctx, con, func(ctx context.Context, w, h uint32) error {
			_, err := s.svc.ResizePty(ctx, &taskapi.ResizePtyRequest{Id: s.id, ExecId: execID, Width: w, Height: h})
			return err
		})
		defer stop()
	}
	attached.Wait()
	return nil
}

// shimExecProcess is the exec's process: --spec's, else the container's
// own from its bundle, with the command, --env and --cwd applied.
func shimExecProcess(ctx context.Context, c *cli.Context, s *shimConn) (*specs.Process, error) {
	var proc specs.Process
	if path := c.String("spec"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read process spec: %w", err)
		}
		if err := json.Unmarshal(data, &proc); err != nil {
			return nil, fmt.Errorf("process spec %s: %w", path, err)
		}
	} else {
		st, err := s.svc.State(ctx, &taskapi.StateRequest{Id: s.id})
		if err != nil {
			return nil, shimErr("state", err)
		}
		data, err := os.ReadFile(filepath.Join(st.Bundle, "config.json"))
		if err != nil {
			return nil, fmt.Errorf("container's process (give --spec instead): %w", err)
		}
		var spec specs.Spec
		if err := json.Unmarshal(data, &spec); err != nil {
			return nil, fmt.Errorf("container's process: %s: %w", filepath.Join(st.Bundle, "config.json"), err)
		}
		if spec.Process == nil {
			return nil, fmt.Errorf("container's spec has no process; give --spec: %w", errdefs.ErrInvalidArgument)
		}
		proc = *spec.Process
	}
	args := c.Args().Tail()
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) > 0 {
		proc.Args = args
	}
	if len(proc.Args) == 0 {
		return nil, fmt.Errorf("no command to run: give one after the exec id or in --spec: %w", errdefs.ErrInvalidArgument)
	}
	proc.Env = append(proc.Env, c.StringSlice("env")...)
	if cwd := c.String("cwd"); cwd != "" {
		proc.Cwd = cwd
	}
	if proc.Cwd == "" {
		proc.Cwd = "/"
	}
	return &proc, nil
}

// makeFifos creates the FIFOs that do not exist yet, for a shim to open.
func makeFifos(paths ...string) error {
	for _, p := range paths {
		if p == "" {
			continue
		}
		if err := unix.Mkfifo(p, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create fifo %s: %w", p, err)
		}
	}
	return nil
}
