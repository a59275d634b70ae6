package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apievents "github.com/berth-containers/berth/api/events"
	"github.com/berth-containers/berth/api/runtime/runc/options"
	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	eventsapi "github.com/berth-containers/berth/api/services/ttrpc/events/v1"
	apitypes "github.com/berth-containers/berth/api/types"
	apitask "github.com/berth-containers/berth/api/types/task"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/typeurl"
	"github.com/berth-containers/berth/runtime/v2/shim/internal/testbundle"
	"github.com/containerd/ttrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// shimBinary is built once for the package's tests.
var shimBinary string

func TestMain(m *testing.M) { os.Exit(testbundle.RunWithShim(m, &shimBinary)) }

// eventSink is a fake daemon events service.
type eventSink struct {
	mu     sync.Mutex
	got    []*eventsapi.Envelope
	notify chan struct{}
}

func (e *eventSink) Forward(ctx context.Context, r *eventsapi.ForwardRequest) (*emptypb.Empty, error) {
	ns, _ := namespaces.Namespace(ctx)
	if ns != r.Envelope.Namespace {
		return nil, fmt.Errorf("metadata namespace %q, envelope %q", ns, r.Envelope.Namespace)
	}
	e.mu.Lock()
	e.got = append(e.got, r.Envelope)
	e.mu.Unlock()
	select {
	case e.notify <- struct{}{}:
	default:
	}
	return &emptypb.Empty{}, nil
}

// waitTopics waits until the topics seen so far start with want.
func (e *eventSink) waitTopics(t *testing.T, want ...string) []*eventsapi.Envelope {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		e.mu.Lock()
		var topics []string
		for _, env := range e.got {
			topics = append(topics, env.Topic)
		}
		got := append([]*eventsapi.Envelope(nil), e.got...)
		e.mu.Unlock()
		if len(topics) >= len(want) && strings.Join(topics[:len(want)], " ") == strings.Join(want, " ") {
			return got
		}
		select {
		case <-e.notify:
		case <-deadline:
			t.Fatalf("events %v, want %v", topics, want)
		}
	}
}

type harness struct {
	t       *testing.T
	dir     string
	address string // fake daemon gRPC address; events on address.ttrpc
	events  *eventSink
	root    string // runc root
	sockets []string
}

// socketsGone checks the shims removed their sockets.
func (h *harness) socketsGone() {
	for _, s := range h.sockets {
		if _, err := os.Stat(s); !os.IsNotExist(err) {
			h.t.Errorf("shim socket %s left behind: %v", s, err)
		}
	}
}

func newHarness(t *testing.T) *harness {
	testbundle.Skip(t)
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, address: filepath.Join(dir, "berth.sock"), events: &eventSink{notify: make(chan struct{}, 1)},
		root: filepath.Join(dir, "runc")}
	srv, err := ttrpc.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	eventsapi.RegisterEventsService(srv, h.events)
	l, err := net.Listen("unix", h.address+".ttrpc")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background(), l)
	t.Cleanup(func() { srv.Close() })
	return h
}

func (h *harness) shim(bundle, id string, stdin []byte, args ...string) *exec.Cmd {
	cmd := exec.Command(shimBinary, append([]string{"-namespace", "test", "-id", id, "-address", h.address}, args...)...)
	cmd.Dir = bundle
	// The daemon's events address comes from -address here.
	cmd.Env = append(os.Environ(), "TTRPC_ADDRESS=")
	cmd.Stdin = bytes.NewReader(stdin)
	return cmd
}

func (h *harness) options() *anypb.Any {
	a, err := typeurl.MarshalAny(&options.Options{Root: h.root})
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// start runs `shim start` in bundle and connects to the shim.
func (h *harness) start(bundle, id string) (taskapi.TaskService, uint32) {
	t := h.t
	opts, _ := proto.Marshal(h.options())
	var stderr bytes.Buffer
	cmd := h.shim(bundle, id, opts, "start")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shim start: %v: %s", err, stderr.String())
	}
	address := strings.TrimSpace(string(out))
	if !strings.HasPrefix(address, "unix://") {
		t.Fatalf("shim start printed %q", out)
	}
	h.sockets = append(h.sockets, strings.TrimPrefix(address, "unix://"))
	if b, _ := os.ReadFile(filepath.Join(bundle, "address")); string(b) != address {
		t.Fatalf("address file %q, printed %q", b, address)
	}
	conn, err := net.Dial("unix", strings.TrimPrefix(address, "unix://"))
	if err != nil {
		t.Fatal(err)
	}
	client := ttrpc.NewClient(conn)
	task := taskapi.NewTaskClient(client)
	cr, err := task.Connect(ctx(), &taskapi.ConnectRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	shimPid := cr.ShimPid
	t.Cleanup(func() {
		client.Close()
		exec.Command("runc", "--root", filepath.Join(h.root, "test"), "delete", "-f", id).Run()
		if !exited(int(shimPid)) {
			syscall.Kill(int(shimPid), syscall.SIGKILL)
		}
	})
	return task, shimPid
}

func ctx() context.Context {
	return namespaces.WithNamespace(context.Background(), "test")
}

// exited reports whether pid is gone or a zombie.
func exited(pid int) bool { return testbundle.Exited(pid) }

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if exited(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("shim %d still running", pid)
}

func TestShimRunExit3(t *testing.T) {
	h := newHarness(t)
	bundle := testbundle.New(t, []string{"sh", "-c", "exit 3"}, nil)
	task, shimPid := h.start(bundle, "exit3")

	cr, err := task.Create(ctx(), &taskapi.CreateTaskRequest{Id: "exit3", Bundle: bundle, Options: h.options()})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if cr.Pid == 0 {
		t.Fatal("create: no pid")
	}
	st, err := task.State(ctx(), &taskapi.StateRequest{Id: "exit3"})
	if err != nil || st.Status != apitask.Status_CREATED || st.Pid != cr.Pid {
		t.Fatalf("state: %v %v", st, err)
	}
	if _, err := task.Start(ctx(), &taskapi.StartRequest{Id: "exit3"}); err != nil {
		t.Fatalf("start: %v", err)
	}
	wr, err := task.Wait(ctx(), &taskapi.WaitRequest{Id: "exit3"})
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	if wr.ExitStatus != 3 {
		t.Fatalf("exit status %d, want 3", wr.ExitStatus)
	}
	dr, err := task.Delete(ctx(), &taskapi.DeleteRequest{Id: "exit3"})
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if dr.ExitStatus != 3 || dr.Pid != cr.Pid {
		t.Fatalf("delete response %v", dr)
	}
	if _, err := task.State(ctx(), &taskapi.StateRequest{Id: "exit3"}); !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		t.Fatalf("state after delete: %v", err)
	}
	// Delete answered before runc delete ran; Shutdown answers after it,
	// so whoever removes the bundle next finds runc done with the id.
	if _, err := task.Shutdown(ctx(), &taskapi.ShutdownRequest{Id: "exit3"}); err != nil && !errors.Is(err, ttrpc.ErrClosed) {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.root, "test", "exit3")); !os.IsNotExist(err) {
		t.Fatalf("runc state of exit3 still there after shutdown: %v", err)
	}
	waitGone(t, int(shimPid))
	h.socketsGone()

	envs := h.events.waitTopics(t, "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete")
	var exit apievents.TaskExit
	if err := typeurl.UnmarshalTo(envs[2].Event, &exit); err != nil {
		t.Fatal(err)
	}
	if exit.ExitStatus != 3 || exit.ContainerId != "exit3" || exit.Id != "exit3" || exit.Pid != cr.Pid {
		t.Fatalf("exit event %v", &exit)
	}
	var del apievents.TaskDelete
	if err := typeurl.UnmarshalTo(envs[3].Event, &del); err != nil {
		t.Fatal(err)
	}
	// containerd's shims name only the container in an init's delete.
	if del.ExitStatus != 3 || del.ContainerId != "exit3" || del.Id != "" || del.Pid != cr.Pid {
		t.Fatalf("delete event %v", &del)
	}
	if envs[0].Namespace != "test" {
		t.Fatalf("event namespace %q", envs[0].Namespace)
	}
	if _, err := os.Stat(filepath.Join(bundle, "options.json")); err != nil {
		t.Fatalf("options.json: %v", err)
	}
}

func TestShimExecKillPids(t *testing.T) {
	h := newHarness(t)
	bundle := testbundle.New(t, []string{"sleep", "30"}, nil)
	task, shimPid := h.start(bundle, "sleeper")
	c := ctx()
	if _, err := task.Create(c, &taskapi.CreateTaskRequest{Id: "sleeper", Bundle: bundle, Options: h.options()}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := task.Create(c, &taskapi.CreateTaskRequest{Id: "sleeper", Bundle: bundle}); !errdefs.IsAlreadyExists(errdefs.FromGRPC(err)) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := task.Start(c, &taskapi.StartRequest{Id: "sleeper"}); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "exec.log")
	spec, _ := json.Marshal(&specs.Process{Args: []string{"sh", "-c", "echo from-exec; sleep 30"}, Cwd: "/", Env: []string{"PATH=/bin"}})
	procAny := &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process", Value: spec}
	if _, err := task.Exec(c, &taskapi.ExecProcessRequest{Id: "sleeper", ExecId: "e1", Stdout: "file://" + out, Spec: procAny}); err != nil {
		t.Fatalf("exec: %v", err)
	}
	if _, err := task.Exec(c, &taskapi.ExecProcessRequest{Id: "sleeper", ExecId: "e1", Spec: procAny}); !errdefs.IsAlreadyExists(errdefs.FromGRPC(err)) {
		t.Fatalf("duplicate exec: %v", err)
	}
	sr, err := task.Start(c, &taskapi.StartRequest{Id: "sleeper", ExecId: "e1"})
	if err != nil {
		t.Fatalf("start exec: %v", err)
	}
	pr, err := task.Pids(c, &taskapi.PidsRequest{Id: "sleeper"})
	if err != nil {
		t.Fatal(err)
	}
	var sawExec bool
	for _, p := range pr.Processes {
		if p.Pid == sr.Pid {
			var d options.ProcessDetails
			if err := typeurl.UnmarshalTo(p.Info, &d); err != nil || d.ExecId != "e1" {
				t.Fatalf("exec process info %v %v", p.Info, err)
			}
			sawExec = true
		}
	}
	if len(pr.Processes) < 2 || !sawExec {
		t.Fatalf("pids %v (exec pid %d)", pr.Processes, sr.Pid)
	}

	if _, err := task.Pause(c, &taskapi.PauseRequest{Id: "sleeper"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := task.State(c, &taskapi.StateRequest{Id: "sleeper"}); st.Status != apitask.Status_PAUSED {
		t.Fatalf("state %v", st.Status)
	}
	if _, err := task.Resume(c, &taskapi.ResumeRequest{Id: "sleeper"}); err != nil {
		t.Fatal(err)
	}
	stats, err := task.Stats(c, &taskapi.StatsRequest{Id: "sleeper"})
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if !strings.HasPrefix(stats.Stats.TypeUrl, "io.containerd.cgroups.v") {
		t.Fatalf("stats type %s", stats.Stats.TypeUrl)
	}
	if _, err := task.Checkpoint(c, &taskapi.CheckpointTaskRequest{Id: "sleeper"}); !errdefs.IsNotImplemented(errdefs.FromGRPC(err)) {
		t.Fatalf("checkpoint: %v", err)
	}

	// Kill the exec, then the init.
	if _, err := task.Kill(c, &taskapi.KillRequest{Id: "sleeper", ExecId: "e1", Signal: 9}); err != nil {
		t.Fatal(err)
	}
	wr, err := task.Wait(c, &taskapi.WaitRequest{Id: "sleeper", ExecId: "e1"})
	if err != nil || wr.ExitStatus != 137 {
		t.Fatalf("exec wait %v %v", wr, err)
	}
	if _, err := task.Delete(c, &taskapi.DeleteRequest{Id: "sleeper", ExecId: "e1"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "from-exec\n" {
		t.Fatalf("exec log %q", b)
	}
	// Shutdown is refused while a task is left.
	task.Shutdown(c, &taskapi.ShutdownRequest{Id: "sleeper"})
	time.Sleep(50 * time.Millisecond)
	if exited(int(shimPid)) {
		t.Fatal("shim exited with a task left")
	}
	if _, err := task.Kill(c, &taskapi.KillRequest{Id: "sleeper", Signal: 9, All: true}); err != nil {
		t.Fatal(err)
	}
	if wr, err := task.Wait(c, &taskapi.WaitRequest{Id: "sleeper"}); err != nil || wr.ExitStatus != 137 {
		t.Fatalf("wait %v %v", wr, err)
	}
	if _, err := task.Kill(c, &taskapi.KillRequest{Id: "sleeper", Signal: 9}); !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		t.Fatalf("kill exited: %v", err)
	}
	if _, err := task.Delete(c, &taskapi.DeleteRequest{Id: "sleeper"}); err != nil {
		t.Fatal(err)
	}
	task.Shutdown(c, &taskapi.ShutdownRequest{Id: "sleeper"})
	waitGone(t, int(shimPid))
	h.socketsGone()
	h.events.waitTopics(t, "/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started",
		"/tasks/paused", "/tasks/resumed", "/tasks/exit", "/tasks/exit", "/tasks/delete")
}

// A shim that died is cleaned up by `shim delete`.
func TestShimDeleteAction(t *testing.T) {
	h := newHarness(t)
	bundle := testbundle.New(t, []string{"sleep", "30"}, nil)
	task, shimPid := h.start(bundle, "orphan")
	cr, err := task.Create(ctx(), &taskapi.CreateTaskRequest{Id: "orphan", Bundle: bundle, Options: h.options()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.Start(ctx(), &taskapi.StartRequest{Id: "orphan"}); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(int(shimPid), syscall.SIGKILL)
	waitGone(t, int(shimPid))

	var stderr bytes.Buffer
	cmd := h.shim(filepath.Dir(bundle), "orphan", nil, "-bundle", bundle, "delete")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shim delete: %v: %s", err, stderr.String())
	}
	var dr taskapi.DeleteResponse
	if err := proto.Unmarshal(out, &dr); err != nil {
		t.Fatal(err)
	}
	if dr.ExitStatus != 137 || dr.Pid != cr.Pid || dr.ExitedAt == nil {
		t.Fatalf("delete response %v", &dr)
	}
	if err := exec.Command("runc", "--root", filepath.Join(h.root, "test"), "state", "orphan").Run(); err == nil {
		t.Fatal("runc container still exists")
	}
	h.socketsGone()
}

// Rootfs mounts in the create request are mounted by the shim and
// unmounted by its delete.
func TestShimRootfsMounts(t *testing.T) {
	h := newHarness(t)
	bundle := testbundle.New(t, []string{"sh", "-c", "test -x /bin/busybox"}, nil)
	lower := filepath.Join(t.TempDir(), "lower")
	if err := os.Rename(filepath.Join(bundle, "rootfs"), lower); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(filepath.Join(bundle, "rootfs"), syscall.MNT_DETACH) })
	task, _ := h.start(bundle, "mounts")
	_, err := task.Create(ctx(), &taskapi.CreateTaskRequest{Id: "mounts", Bundle: bundle, Options: h.options(),
		Rootfs: []*apitypes.Mount{{Type: "bind", Source: lower, Options: []string{"rbind", "rw"}}}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs", "bin", "busybox")); err != nil {
		t.Fatalf("rootfs not mounted: %v", err)
	}
	if _, err := task.Start(ctx(), &taskapi.StartRequest{Id: "mounts"}); err != nil {
		t.Fatal(err)
	}
	if wr, err := task.Wait(ctx(), &taskapi.WaitRequest{Id: "mounts"}); err != nil || wr.ExitStatus != 0 {
		t.Fatalf("wait %v %v", wr, err)
	}
	if _, err := task.Delete(ctx(), &taskapi.DeleteRequest{Id: "mounts"}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(bundle, "rootfs")); len(entries) != 0 {
		t.Fatalf("rootfs still mounted: %d entries", len(entries))
	}
	task.Shutdown(ctx(), &taskapi.ShutdownRequest{Id: "mounts"})
}
