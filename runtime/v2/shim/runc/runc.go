// Package runc drives the runc command line. Every invocation is started and
// waited for through the shim's reaper (the shim reaps all of its children
// with one SIGCHLD loop, so exec.Cmd.Wait would race it), and a failed
// invocation reports runc's own last error message from its --log file.
package runc

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/berth-containers/berth/runtime/v2/shim/reaper"
	"golang.org/x/sys/unix"
)

// DefaultCommand is the runc binary looked up in PATH.
const DefaultCommand = "runc"

// Runc is one configured runc: its global flags.
type Runc struct {
	// Command is the runc binary; DefaultCommand when empty.
	Command string
	// Root is runc's state directory (--root).
	Root string
	// Log is the file runc logs to (--log); its last error line becomes the
	// message of a failed invocation.
	Log string
	// LogFormat is --log-format; "json" when empty, which is what the error
	// extraction reads.
	LogFormat string
	// SystemdCgroup makes runc manage cgroups through systemd.
	SystemdCgroup bool
	// Debug turns on runc's debug logging.
	Debug bool
	// Monitor reaps runc; reaper.Default when nil.
	Monitor *reaper.Monitor
}

// IO is the stdio handed to runc, and through it to the container process.
// Nil files become /dev/null.
type IO struct {
	Stdin, Stdout, Stderr *os.File
}

func (r *Runc) monitor() *reaper.Monitor {
	if r.Monitor != nil {
		return r.Monitor
	}
	return reaper.Default
}

func (r *Runc) command() string {
	if r.Command != "" {
		return r.Command
	}
	return DefaultCommand
}

func (r *Runc) logFormat() string {
	if r.LogFormat != "" {
		return r.LogFormat
	}
	return "json"
}

func (r *Runc) globalArgs() []string {
	var args []string
	if r.Root != "" {
		args = append(args, "--root", r.Root)
	}
	if r.Log != "" {
		args = append(args, "--log", r.Log, "--log-format", r.logFormat())
	}
	if r.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	if r.Debug {
		args = append(args, "--debug")
	}
	return args
}

// cmd builds an invocation of the subcommand args[0]. NOTIFY_SOCKET is
// never passed on, whoever started the shim with it: with it runc gives
// the container the socket and `runc start` waits for its READY=1.
func (r *Runc) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(r.command(), append(r.globalArgs(), args...)...)
	if _, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
		cmd.Env = EnvWithout(os.Environ(), "NOTIFY_SOCKET")
	}
	return cmd
}

// EnvWithout is env without the variables named.
func EnvWithout(env []string, names ...string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// runIO runs a subcommand whose stdio belongs to the container (create,
// exec, run), so nothing of runc's output can be captured there; failures
// are explained from the log file.
func (r *Runc) runIO(ctx context.Context, stdio *IO, extra []*os.File, args ...string) error {
	cmd := r.cmd(args...)
	if stdio != nil {
		// Assigning a typed nil *os.File would make exec.Cmd use it; only
		// set the ones we have so the rest are /dev/null.
		if stdio.Stdin != nil {
			cmd.Stdin = stdio.Stdin
		}
		if stdio.Stdout != nil {
			cmd.Stdout = stdio.Stdout
		}
		if stdio.Stderr != nil {
			cmd.Stderr = stdio.Stderr
		}
	}
	cmd.ExtraFiles = extra
	mark := r.logMark()
	status, err := r.monitor().Run(ctx, cmd)
	if err != nil {
		return fmt.Errorf("runc %s: %w", args[0], err)
	}
	if status != 0 {
		return r.failure(args[0], status, mark, nil)
	}
	return nil
}

// runOutput runs a subcommand and returns its stdout. Output goes to memory
// files rather than pipes: nothing has to read while runc runs, so there is
// no copy goroutine and no deadlock on a full pipe.
func (r *Runc) runOutput(ctx context.Context, stdin *os.File, args ...string) ([]byte, error) {
	stdout, err := memfile("runc-stdout")
	if err != nil {
		return nil, fmt.Errorf("runc %s: %w", args[0], err)
	}
	defer stdout.Close()
	stderr, err := memfile("runc-stderr")
	if err != nil {
		return nil, fmt.Errorf("runc %s: %w", args[0], err)
	}
	defer stderr.Close()

	cmd := r.cmd(args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	mark := r.logMark()
	status, err := r.monitor().Run(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("runc %s: %w", args[0], err)
	}
	if status != 0 {
		errOut, _ := readAll(stderr)
		return nil, r.failure(args[0], status, mark, errOut)
	}
	out, err := readAll(stdout)
	if err != nil {
		return nil, fmt.Errorf("runc %s: read output: %w", args[0], err)
	}
	return out, nil
}

func memfile(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

func readAll(f *os.File) ([]byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}
