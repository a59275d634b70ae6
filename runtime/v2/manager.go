// Package v2 is the daemon side of the v2 runtime: it turns a container and
// a create request into a bundle, starts the container's shim, talks to it
// over ttrpc, and finds its shims again after a daemon restart.
package v2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsapi "github.com/berth-containers/berth/api/events"
	runcoptions "github.com/berth-containers/berth/api/runtime/runc/options"
	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/typeurl"
)

// Publisher publishes events; the daemon's exchange implements it.
type Publisher interface {
	Publish(ctx context.Context, topic string, event interface{}) error
}

// RuntimeConfig maps a runtime name to a shim binary and default options.
type RuntimeConfig struct {
	// Binary is a path or a name looked up on PATH.
	Binary string `toml:"binary"`
	// The runc shim options (containerd.runc.v1.Options) sent when
	// neither the container nor the create request carries options.
	BinaryName    string `toml:"binary_name"`
	Root          string `toml:"root"`
	SystemdCgroup bool   `toml:"systemd_cgroup"`
}

// defaultOptions packs the configured runc options for runtime, or nil.
func (rc RuntimeConfig) defaultOptions() (*anypb.Any, error) {
	if rc.BinaryName == "" && rc.Root == "" && !rc.SystemdCgroup {
		return nil, nil
	}
	return typeurl.MarshalAny(&runcoptions.Options{BinaryName: rc.BinaryName, Root: rc.Root, SystemdCgroup: rc.SystemdCgroup})
}

// Config configures the task manager plugin.
type Config struct {
	Runtimes map[string]RuntimeConfig `toml:"runtimes"`
	// NoSpareShim turns off the spare shim: by default one process of our
	// shim waits, started and initialised, for the next task to take it
	// (a few ms off every task create, one idle shim's memory per node).
	NoSpareShim bool `toml:"no_spare_shim"`
}

// DefaultConfig maps both our runtime name and containerd's runc name to
// our shim, so clients that ask for io.containerd.runc.v2 get ours; point
// it back at containerd-shim-runc-v2 to use containerd's.
func DefaultConfig() *Config {
	return &Config{Runtimes: map[string]RuntimeConfig{
		"io.containerd.berth.v2": {Binary: "containerd-shim-berth-v2"},
		"io.containerd.runc.v2":  {Binary: "containerd-shim-berth-v2"},
	}}
}

// ManagerConfig is what the manager needs from the daemon.
type ManagerConfig struct {
	State        string
	Address      string
	TTRPCAddress string
	Runtimes     map[string]RuntimeConfig
	Publisher    Publisher
	Debug        bool
	NoSpareShim  bool
}

// TaskManager owns every task's shim.
type TaskManager struct {
	cfg     ManagerConfig
	publish string

	mu    sync.Mutex
	tasks map[string]*Task // "<ns>/<id>"
	// teardowns holds deleted tasks whose shim is still shutting down and
	// whose bundle is not yet removed; the channel closes when both are
	// done. A new task of the same id waits for it (see Delete).
	teardowns map[string]chan struct{}
	spares    *spares // nil when turned off
}

// NewTaskManager creates the manager and reconnects to the shims of tasks
// that were running when the daemon last stopped.
func NewTaskManager(ctx context.Context, cfg ManagerConfig) (*TaskManager, error) {
	if err := os.MkdirAll(cfg.State, 0o711); err != nil {
		return nil, fmt.Errorf("create runtime state dir: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	m := &TaskManager{cfg: cfg, publish: self, tasks: map[string]*Task{}, teardowns: map[string]chan struct{}{}}
	if !cfg.NoSpareShim {
		m.spares = newSpares(cfg.Address, shimEnv(cfg.Address, cfg.TTRPCAddress))
	}
	m.restore(ctx)
	return m, nil
}

var runtimeNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$`)

// resolveBinary turns a runtime name into a shim binary path:
// io.containerd.NAME.vN runs containerd-shim-NAME-vN unless configured.
func (m *TaskManager) resolveBinary(runtime string) (string, error) {
	bin := ""
	if rc, ok := m.cfg.Runtimes[runtime]; ok && rc.Binary != "" {
		bin = rc.Binary
	} else {
		if !runtimeNameRe.MatchString(runtime) {
			return "", fmt.Errorf("runtime %q: invalid name (want io.containerd.NAME.VERSION): %w", runtime, errdefs.ErrInvalidArgument)
		}
		parts := strings.Split(runtime, ".")
		bin = fmt.Sprintf("containerd-shim-%s-%s", parts[len(parts)-2], parts[len(parts)-1])
	}
	if filepath.IsAbs(bin) {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("runtime %q: shim binary %s: %w", runtime, bin, errdefs.ErrNotFound)
		}
		return bin, nil
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("runtime %q: shim binary %s not installed on PATH: %w", runtime, bin, errdefs.ErrNotFound)
	}
	return filepath.Abs(path)
}

func key(ns, id string) string { return ns + "/" + id }

// Create starts a shim for a new task and creates the task in it.
func (m *TaskManager) Create(ctx context.Context, id, runtime string, opts CreateOpts) (_ *Task, retErr error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	if err := identifiers.Validate(id); err != nil {
		return nil, err
	}
	bin, err := m.resolveBinary(runtime)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	// A task of this id deleted a moment ago may still be tearing down:
	// its bundle and runc's state for the id must be gone first.
	for {
		done, ok := m.teardowns[key(ns, id)]
		if !ok {
			break
		}
		m.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		m.mu.Lock()
	}
	if _, ok := m.tasks[key(ns, id)]; ok {
		m.mu.Unlock()
		return nil, fmt.Errorf("task %q in namespace %q: %w", id, ns, errdefs.ErrAlreadyExists)
	}
	// Reserve the name while the shim starts so a concurrent create of the
	// same task fails fast instead of racing for the bundle.
	m.tasks[key(ns, id)] = nil
	m.mu.Unlock()
	defer func() {
		if retErr != nil {
			m.mu.Lock()
			if m.tasks[key(ns, id)] == nil {
				delete(m.tasks, key(ns, id))
			}
			m.mu.Unlock()
		}
	}()

	t0 := time.Now()
	bundle, err := newBundle(ctx, m.cfg.State, ns, id, opts.Spec)
	if err != nil {
		return nil, err
	}
	t := newTask(id, ns, runtime, bundle)
	t.lost = m.forget
	t.binary = &shimBinary{path: bin, bundle: bundle, address: m.cfg.Address, ttrpcAddress: m.cfg.TTRPCAddress,
		publish: m.publish, debug: m.cfg.Debug, spares: m.spares}
	topts := opts.TaskOptions
	if topts == nil || len(topts.Value) == 0 {
		topts = opts.RuntimeOptions
	}
	if topts == nil || len(topts.Value) == 0 {
		if topts, err = m.cfg.Runtimes[runtime].defaultOptions(); err != nil {
			bundle.Delete()
			return nil, fmt.Errorf("runtime %q options: %w", runtime, err)
		}
	}
	t1 := time.Now()
	client, err := t.binary.start(ctx, topts, func() { m.shimClosed(t) })
	if err != nil {
		bundle.Delete()
		return nil, err
	}
	t2 := time.Now()
	t.client = client
	t.task = taskapi.NewTaskClient(client)
	defer func() {
		if retErr != nil {
			m.abandon(ctx, t)
		}
	}()
	cr, err := t.task.Create(t.ctx(ctx), &taskapi.CreateTaskRequest{
		Id: id, Bundle: bundle.Path, Rootfs: opts.Rootfs, Terminal: opts.Terminal,
		Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr,
		Checkpoint: opts.Checkpoint, Options: topts,
	})
	if err != nil {
		return nil, t.shimErr("create", err)
	}
	t.Pid = cr.Pid
	log.G(ctx).WithFields(map[string]interface{}{"id": id, "bundle": t1.Sub(t0), "shim_start": t2.Sub(t1), "shim_create": time.Since(t2)}).Debug("task created")
	m.mu.Lock()
	m.tasks[key(ns, id)] = t
	m.mu.Unlock()
	return t, nil
}

// abandon tears down a shim whose task never got created.
func (m *TaskManager) abandon(ctx context.Context, t *Task) {
	t.setDead(&DeleteResult{})
	ctx = context.WithoutCancel(ctx)
	t.task.Delete(t.ctx(ctx), &taskapi.DeleteRequest{Id: t.ID})
	t.task.Shutdown(t.ctx(ctx), &taskapi.ShutdownRequest{Id: t.ID, Now: true})
	t.client.Close()
	if _, err := t.binary.cleanup(ctx); err != nil {
		log.G(ctx).WithError(err).WithField("id", t.ID).Debug("cleanup after failed create")
	}
	m.removeBundle(ctx, t.Bundle)
}

// Get returns the task in the context's namespace.
func (m *TaskManager) Get(ctx context.Context, id string) (*Task, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	t := m.tasks[key(ns, id)]
	m.mu.Unlock()
	if t == nil {
		return nil, fmt.Errorf("task %q in namespace %q: %w", id, ns, errdefs.ErrNotFound)
	}
	return t, nil
}

// Has reports whether the namespace has a task for container id.
func (m *TaskManager) Has(ctx context.Context, id string) bool {
	_, err := m.Get(ctx, id)
	return err == nil
}

// List returns the namespace's tasks.
func (m *TaskManager) List(ctx context.Context) ([]*Task, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Task
	for k, t := range m.tasks {
		if t != nil && strings.HasPrefix(k, ns+"/") {
			out = append(out, t)
		}
	}
	return out, nil
}

// TaskIDs returns the ids of the namespace's tasks, those still being
// created included.
func (m *TaskManager) TaskIDs(ctx context.Context) ([]string, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for k := range m.tasks {
		if id, ok := strings.CutPrefix(k, ns+"/"); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Count is the number of live tasks in all namespaces (for metrics).
func (m *TaskManager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, t := range m.tasks {
		if t != nil && t.deadState() == nil {
			n++
		}
	}
	return n
}

// Delete deletes the task's init process, shuts its shim down and removes
// the bundle. It returns the exit status of the init process.
//
// It answers once the shim has deleted the task, when the exit status is
// final; the shim's shutdown (which waits for its runc delete) and the
// bundle's removal go on in the background, off the path of every
// `ctr run --rm`. Create of the same id waits for them.
func (m *TaskManager) Delete(ctx context.Context, id string) (*DeleteResult, error) {
	t, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !t.markDeleting() {
		return nil, fmt.Errorf("task %q: a delete is already under way: %w", id, errdefs.ErrFailedPrecondition)
	}
	return m.deleteTask(ctx, t)
}

// unknownExitStatus is what waiters hear when a task's exit was never
// learnt, as containerd reports it.
const unknownExitStatus = 255

// forget drops a task whose shim, alive, no longer knows it (deleted
// behind our back, e.g. by `ctr shim delete`): it is torn down as a
// delete would, or its container could never be deleted. A delete
// already under way has it in hand.
func (m *TaskManager) forget(ctx context.Context, t *Task) {
	if !t.markDeleting() {
		return
	}
	log.G(ctx).WithField("id", t.ID).Warn("the task's shim no longer has it; dropping the task")
	// The shim's NotFound is the expected answer; anything else is worth
	// a line, as the task stays listed for a later delete.
	if _, err := m.deleteTask(context.WithoutCancel(ctx), t); err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).WithField("id", t.ID).Warn("drop task its shim no longer has")
	}
}

// deleteTask is Delete for a task marked deleting.
func (m *TaskManager) deleteTask(ctx context.Context, t *Task) (*DeleteResult, error) {
	id := t.ID
	res := t.deadState()
	if res != nil {
		// The shim died earlier; only its bundle is left.
		m.mu.Lock()
		delete(m.tasks, key(t.Namespace, t.ID))
		m.mu.Unlock()
		if err := m.removeBundle(ctx, t.Bundle); err != nil {
			return nil, err
		}
		return res, nil
	}
	r, err := t.task.Delete(t.ctx(ctx), &taskapi.DeleteRequest{Id: t.ID})
	var notFound error
	switch err = t.shimErr("delete", err); {
	case err == nil:
		res = &DeleteResult{Pid: r.Pid, ExitStatus: r.ExitStatus, ExitedAt: r.ExitedAt.AsTime()}
	case errdefs.IsNotFound(err):
		// The shim no longer has the task (deleted behind our back,
		// e.g. by `ctr shim delete`, or the shim went away during
		// the call): the task is gone, so it leaves the list and its
		// shim and bundle are torn down, or the container could never
		// be deleted. The caller still hears NotFound, as containerd's.
		notFound = err
		res = &DeleteResult{ExitStatus: unknownExitStatus, ExitedAt: time.Now()}
	default:
		// The task stays (still running, say): a later delete may try.
		t.mu.Lock()
		t.deleting = false
		t.mu.Unlock()
		return nil, err
	}
	t.setDead(res)
	k := key(t.Namespace, t.ID)
	done := make(chan struct{})
	m.mu.Lock()
	delete(m.tasks, k)
	m.teardowns[k] = done
	m.mu.Unlock()
	go func() {
		ctx := context.WithoutCancel(ctx)
		defer func() {
			m.mu.Lock()
			delete(m.teardowns, k)
			m.mu.Unlock()
			close(done)
		}()
		// Shutdown makes the shim exit once it has no tasks; the
		// connection closing then is expected, not a crash.
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := t.task.Shutdown(t.ctx(sctx), &taskapi.ShutdownRequest{Id: t.ID}); err != nil && !errors.Is(err, ttrpc.ErrClosed) {
			log.G(ctx).WithError(err).WithField("id", id).Debug("shim shutdown")
		}
		cancel()
		t.client.Close()
		if err := m.removeBundle(ctx, t.Bundle); err != nil {
			log.G(ctx).WithError(err).WithField("id", id).Warn("remove bundle")
		}
	}()
	if notFound != nil {
		return nil, notFound
	}
	return res, nil
}

// Close waits (a bounded while) for deleted tasks' teardowns when the
// daemon stops, so no shim is left serving nothing and no bundle is left
// behind. Running tasks are left alone: they outlive the daemon.
func (m *TaskManager) Close() error {
	m.spares.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		m.mu.Lock()
		var done chan struct{}
		for _, d := range m.teardowns {
			done = d
			break
		}
		m.mu.Unlock()
		if done == nil {
			return nil
		}
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("tasks still tearing down: %w", ctx.Err())
		}
	}
}

// removeBundle unmounts the rootfs if the shim left it mounted, then
// removes the bundle folder.
func (m *TaskManager) removeBundle(ctx context.Context, b *Bundle) error {
	rootfs := filepath.Join(b.Path, "rootfs")
	if err := mount.UnmountAll(rootfs, 0); err != nil {
		log.G(ctx).WithError(err).WithField("rootfs", rootfs).Warn("unmount leftover rootfs")
	}
	if err := b.Delete(); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// shimClosed runs when a shim connection drops. If we did not ask the shim
// to go, it died: clean up after it, mark the task stopped and publish the
// exit so waiters and subscribers learn of it.
func (m *TaskManager) shimClosed(t *Task) {
	if t.deadState() != nil {
		return
	}
	ctx := namespaces.WithNamespace(context.Background(), t.Namespace)
	res, err := t.binary.cleanup(ctx)
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", t.ID).Warn("cleanup after dead shim")
		res = &DeleteResult{ExitStatus: 128 + 9, ExitedAt: time.Now()}
	}
	if res.ExitedAt.IsZero() {
		res.ExitedAt = time.Now()
	}
	if !t.setDead(res) {
		return
	}
	m.removeBundle(ctx, t.Bundle)
	m.publishExit(ctx, t, res)
}

func (m *TaskManager) publishExit(ctx context.Context, t *Task, res *DeleteResult) {
	if m.cfg.Publisher == nil {
		return
	}
	m.cfg.Publisher.Publish(ctx, "/tasks/exit", &eventsapi.TaskExit{
		ContainerId: t.ID, Id: t.ID, Pid: res.Pid, ExitStatus: res.ExitStatus, ExitedAt: timestamp(res.ExitedAt),
	})
}

func timestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// restore reconnects to the shims of bundles left in the state dir. Shims
// that answer are tasks again; the rest are cleaned up with an exit event.
func (m *TaskManager) restore(ctx context.Context) {
	nsDirs, err := os.ReadDir(m.cfg.State)
	if err != nil {
		return
	}
	for _, nsd := range nsDirs {
		ns := nsd.Name()
		if !nsd.IsDir() || identifiers.Validate(ns) != nil {
			continue
		}
		ids, _ := os.ReadDir(filepath.Join(m.cfg.State, ns))
		for _, idd := range ids {
			if !idd.IsDir() || identifiers.Validate(idd.Name()) != nil {
				continue
			}
			nctx := namespaces.WithNamespace(ctx, ns)
			if err := m.restoreOne(nctx, ns, idd.Name()); err != nil {
				log.G(ctx).WithError(err).WithField("namespace", ns).WithField("id", idd.Name()).Warn("restore task")
			}
		}
	}
}

func (m *TaskManager) restoreOne(ctx context.Context, ns, id string) error {
	b, err := loadBundle(m.cfg.State, ns, id)
	if err != nil {
		return err
	}
	t := newTask(id, ns, "", b)
	t.lost = m.forget
	binPath, _ := os.ReadFile(filepath.Join(b.Path, "shim-binary-path"))
	t.binary = &shimBinary{path: string(binPath), bundle: b, address: m.cfg.Address, ttrpcAddress: m.cfg.TTRPCAddress,
		publish: m.publish, debug: m.cfg.Debug}
	addr, err := os.ReadFile(filepath.Join(b.Path, "address"))
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		client, cerr := connectShimOnce(cctx, strings.TrimSpace(string(addr)), func() { m.shimClosed(t) })
		cancel()
		if cerr == nil {
			t.client = client
			t.task = taskapi.NewTaskClient(client)
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = t.task.State(t.ctx(pctx), &taskapi.StateRequest{Id: id})
			cancel()
			if err == nil {
				m.mu.Lock()
				m.tasks[key(ns, id)] = t
				m.mu.Unlock()
				log.G(ctx).WithField("namespace", ns).WithField("id", id).Info("reconnected to shim")
				return nil
			}
			// A shim that answers but has no such task was told to
			// delete it before we stopped: let it go.
			t.setDead(&DeleteResult{})
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			t.task.Shutdown(t.ctx(sctx), &taskapi.ShutdownRequest{Id: id, Now: true})
			cancel()
			client.Close()
		}
	}
	// The shim is gone: clean up what it left and say the task exited.
	res := &DeleteResult{ExitStatus: 128 + 9, ExitedAt: time.Now()}
	if len(binPath) > 0 {
		if r, err := t.binary.cleanup(ctx); err == nil {
			res = r
		} else {
			log.G(ctx).WithError(err).WithField("id", id).Warn("shim delete during restore")
		}
	}
	m.removeBundle(ctx, b)
	m.publishExit(ctx, t, res)
	return nil
}

// connectShimOnce dials without retrying: at restore a missing socket means
// a dead shim, not a slow one.
func connectShimOnce(ctx context.Context, address string, onClose func()) (*ttrpc.Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", strings.TrimPrefix(address, "unix://"))
	if err != nil {
		return nil, err
	}
	return ttrpc.NewClient(conn, ttrpc.WithOnClose(onClose)), nil
}
