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
	"time"

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
func Start(ctx context.Context, cfg Config, stdin io.Reader, stdout io.Writer) (retErr error) {
	if cfg.Namespace == "" || cfg.ID == "" {
		return errors.New("start: -namespace and -id are required")
	}
	bundle, err := cfg.bundle()
	if err != nil {
		return err
	}
	address := SocketAddress(cfg.Address, cfg.Namespace, grouping(bundle, cfg.ID))
	l, err := listen(address)
	if errors.Is(err, syscall.EADDRINUSE) {
		if canConnect(address) {
			if err := writeAddress(bundle, address); err != nil {
				return err
			}
			_, err := io.WriteString(stdout, address)
			return err
		}
		// A dead shim's socket: take it over.
		os.Remove(socketPath(address))
		l, err = listen(address)
	}
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer func() {
		l.Close()
		if retErr != nil {
			os.Remove(socketPath(address))
		}
	}()
	if err := readOptions(stdin, bundle); err != nil {
		return err
	}
	f, err := l.File()
	if err != nil {
		return fmt.Errorf("start: socket fd: %w", err)
	}
	defer f.Close()

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start: find own binary: %w", err)
	}
	args := []string{"-namespace", cfg.Namespace, "-id", cfg.ID, "-address", cfg.Address}
	if cfg.PublishBinary != "" {
		args = append(args, "-publish-binary", cfg.PublishBinary)
	}
	if cfg.Debug {
		args = append(args, "-debug")
	}
	cmd := exec.Command(self, args...)
	cmd.Dir = bundle
	cmd.Env = os.Environ()
	cmd.ExtraFiles = []*os.File{f}
	// A session of its own: the shim outlives the daemon and ignores its
	// terminal. Its stdio is /dev/null, so the daemon reading our stdout
	// sees EOF when we exit.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start: run shim: %w", err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	defer func() {
		if retErr != nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	if err := writeAddress(bundle, address); err != nil {
		return err
	}
	placeShim(ctx, bundle, pid)
	_, err = io.WriteString(stdout, address)
	return err
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

func canConnect(address string) bool {
	conn, err := net.DialTimeout("unix", socketPath(address), 100*time.Millisecond)
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

// readOptions saves the runtime options the daemon pipes to `start` (a
// protobuf Any of containerd.runc.v1.Options) as the bundle's options.json.
func readOptions(stdin io.Reader, bundle string) error {
	if stdin == nil {
		return nil
	}
	if f, ok := stdin.(*os.File); ok {
		// Run by hand from a terminal: there is nothing to read.
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return nil
		}
	}
	data, err := io.ReadAll(stdin)
	if err != nil || len(data) == 0 {
		return nil
	}
	var a anypb.Any
	if err := proto.Unmarshal(data, &a); err != nil {
		return fmt.Errorf("start: decode runtime options: %w", err)
	}
	opts, err := service.DecodeOptions(&a)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return service.WriteOptions(bundle, opts)
}

// placeShim puts the serving shim where the options ask (shim_cgroup) and
// makes the OOM killer prefer it to the daemon, as containerd does; both
// are best effort.
func placeShim(ctx context.Context, bundle string, pid int) {
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
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", os.Getppid()))
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
