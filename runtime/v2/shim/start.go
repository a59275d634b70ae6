package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/runtime/v2/shim/service"
	"github.com/berth-containers/berth/runtime/v2/shim/stats"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Start is `shim start`: it listens on the task's socket, starts a serving
// shim in a new session with the socket as fd 3, records the address in the
// bundle and prints it. If a live shim already owns the socket (a grouped
// container), its address is printed instead.
func Start(ctx context.Context, cfg Config, stdin io.Reader, stdout io.Writer) error {
	opts, err := readOptions(stdin)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start: find own binary: %w", err)
	}
	l, err := Launch(ctx, cfg, self, opts, os.Environ(), os.Getppid())
	if err != nil {
		return err
	}
	if l.Cmd != nil {
		// The serving shim is not ours to wait for: it is re-parented
		// when we exit.
		l.Cmd.Process.Release()
	}
	_, err = io.WriteString(stdout, l.Address)
	return err
}

// Launched is a serving shim that Launch started (Cmd set; its parent must
// reap it) or found already serving the group (Cmd nil).
type Launched struct {
	Address string
	Cmd     *exec.Cmd
}

// Launch does the work of `shim start` for the serving shim binary bin: it
// binds the task's socket, saves opts (containerd.runc.v1.Options, may be
// nil) as the bundle's options, starts bin serving on the socket (fd 3) in
// a new session with env, writes the bundle's address file and places the
// shim (shim_cgroup, an OOM score just above parent's). berthd calls it
// directly for its own shim, which saves running `shim start` as a process
// of its own; the files it leaves are the same, so `shim delete` and a
// restarted daemon find the shim the same way.
func Launch(ctx context.Context, cfg Config, bin string, opts *anypb.Any, env []string, parent int) (*Launched, error) {
	return LaunchWith(ctx, cfg, bin, opts, env, parent, nil)
}

// LaunchWith is Launch that hands the task to spare (see StartSpare), if
// not nil and still alive, instead of starting a new process. The spare
// is then the shim, and its Cmd the Launched's.
func LaunchWith(ctx context.Context, cfg Config, bin string, opts *anypb.Any, env []string, parent int, spare *Spare) (_ *Launched, retErr error) {
	defer func() {
		// A spare not handed this task (a grouped container's shim
		// already serves, or an error came first) is let go, not leaked.
		if spare != nil {
			go spare.Discard()
		}
	}()
	if cfg.Namespace == "" || cfg.ID == "" {
		return nil, errors.New("start: -namespace and -id are required")
	}
	bundle, err := cfg.bundle()
	if err != nil {
		return nil, err
	}
	group := grouping(bundle, cfg.ID)
	address := SocketAddress(cfg.Address, cfg.Namespace, group)
	l, err := listen(address)
	if errors.Is(err, syscall.EADDRINUSE) {
		// Only a sandbox's shim serves other containers. A shim at a
		// container's own address is one of a task of that id which the
		// daemon has deleted: on its way out, never the new task's shim.
		if group != cfg.ID && canConnect(address) {
			if err := writeAddress(bundle, address); err != nil {
				return nil, err
			}
			return &Launched{Address: address}, nil
		}
		// A dead or departing shim's socket: take it over.
		os.Remove(socketPath(address))
		l, err = listen(address)
	}
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	defer func() {
		l.Close()
		if retErr != nil {
			os.Remove(socketPath(address))
		}
	}()
	if err := saveOptions(bundle, opts); err != nil {
		return nil, err
	}
	f, err := l.File()
	if err != nil {
		return nil, fmt.Errorf("start: socket fd: %w", err)
	}
	defer f.Close()

	var cmd *exec.Cmd
	if spare != nil {
		task := cfg
		task.Bundle, task.Socket = bundle, ""
		if err := spare.adopt(task, f); err != nil {
			log.G(ctx).WithError(err).Debug("spare shim unusable; starting a new one")
		} else {
			cmd = spare.Cmd
			spare = nil // it is the task's shim now
		}
	}
	if cmd == nil {
		args := []string{"-namespace", cfg.Namespace, "-id", cfg.ID, "-address", cfg.Address}
		if cfg.PublishBinary != "" {
			args = append(args, "-publish-binary", cfg.PublishBinary)
		}
		if cfg.Debug {
			args = append(args, "-debug")
		}
		cmd = exec.Command(bin, args...)
		cmd.Dir = bundle
		cmd.Env = env
		cmd.ExtraFiles = []*os.File{f}
		// A session of its own: the shim outlives the daemon and ignores
		// its terminal. Its stdio is /dev/null, so a daemon reading the
		// stdout of `shim start` sees EOF when start exits.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start: run shim: %w", err)
		}
	}
	defer func() {
		if retErr != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	if err := writeAddress(bundle, address); err != nil {
		return nil, err
	}
	placeShim(ctx, bundle, cmd.Process.Pid, parent)
	return &Launched{Address: address, Cmd: cmd}, nil
}

// listen binds the socket without unlinking it on close: the serving shim
// keeps listening on the fd after we exit.
func listen(address string) (*net.UnixListener, error) {
	path := socketPath(address)
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false)
	return l, nil
}

// canConnect tells whether a shim serves address. A unix socket connect
// never waits (it succeeds or fails at once, EAGAIN on a full backlog), so
// DialUnix needs no timeout; net.Dial and DialTimeout would also link the
// DNS resolver into the shim.
func canConnect(address string) bool {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: socketPath(address), Net: "unix"})
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// grouping is the id whose shim serves this container: a sandbox id from
// the annotations, else the container's own.
func grouping(bundle, id string) string {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return id
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(b, &spec) != nil {
		return id
	}
	for _, l := range groupLabels {
		if g := spec.Annotations[l]; g != "" {
			return g
		}
	}
	return id
}

// readOptions reads the runtime options the daemon pipes to `start` (a
// protobuf Any of containerd.runc.v1.Options), or nil.
func readOptions(stdin io.Reader) (*anypb.Any, error) {
	if stdin == nil {
		return nil, nil
	}
	if f, ok := stdin.(*os.File); ok {
		// Run by hand from a terminal: there is nothing to read.
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return nil, nil
		}
	}
	data, err := io.ReadAll(stdin)
	if err != nil || len(data) == 0 {
		return nil, nil
	}
	var a anypb.Any
	if err := proto.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("start: decode runtime options: %w", err)
	}
	return &a, nil
}

// saveOptions saves the runtime options as the bundle's options.json.
func saveOptions(bundle string, a *anypb.Any) error {
	if a == nil || len(a.Value) == 0 {
		return nil
	}
	opts, err := service.DecodeOptions(a)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return service.WriteOptions(bundle, opts)
}

// placeShim puts the serving shim where the options ask (shim_cgroup) and
// makes the OOM killer prefer it to the daemon (parent), as containerd does; both
// are best effort.
func placeShim(ctx context.Context, bundle string, pid, parent int) {
	opts, err := service.ReadOptions(bundle)
	if err == nil && opts.GetShimCgroup() != "" {
		if cg, err := stats.ForPath(opts.GetShimCgroup()); err == nil {
			dirs := cg.V1
			if cg.V2 != "" {
				dirs = map[string]string{"": cg.V2}
			}
			for _, d := range dirs {
				os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
			}
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", parent))
	if err != nil {
		return
	}
	score, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return
	}
	if score < 1000 {
		score++
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(strconv.Itoa(score)), 0); err != nil {
		log.G(ctx).WithError(err).Debug("adjust shim oom score")
	}
}
