package shim

import (
	"context"
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

	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/berth-containers/berth/api/runtime/runc/options"
	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	eventsapi "github.com/berth-containers/berth/api/services/ttrpc/events/v1"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/typeurl"
	"github.com/berth-containers/berth/runtime/v2/shim/internal/testbundle"
)

// testShim is the shim binary, built once for the package's tests.
var testShim string

func TestMain(m *testing.M) { os.Exit(testbundle.RunWithShim(m, &testShim)) }

// events is a daemon's ttrpc events service that accepts everything.
type events struct {
	mu     sync.Mutex
	topics []string
}

func (e *events) Forward(_ context.Context, r *eventsapi.ForwardRequest) (*emptypb.Empty, error) {
	e.mu.Lock()
	e.topics = append(e.topics, r.Envelope.Topic)
	e.mu.Unlock()
	return &emptypb.Empty{}, nil
}

// fakeDaemon serves events on address+".ttrpc" and returns the address
// and the environment a shim of it gets.
func fakeDaemon(t *testing.T) (string, []string, *events) {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "spare-test-") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	old := SocketDir
	SocketDir = filepath.Join(dir, "s")
	t.Cleanup(func() { SocketDir = old })
	address := filepath.Join(dir, "d.sock")
	srv, err := ttrpc.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	eventsapi.RegisterEventsService(srv, ev)
	l, err := net.Listen("unix", address+".ttrpc")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background(), l)
	t.Cleanup(func() { srv.Close() })
	return address, append(os.Environ(), "TTRPC_ADDRESS="+address+".ttrpc"), ev
}

func waitExit(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("shim %d did not exit", cmd.Process.Pid)
	}
}

// runTask drives one task through the shim at address: create, start,
// wait (exit 7), delete, shutdown.
func runTask(t *testing.T, address, bundle, id, runcRoot string) {
	t.Helper()
	conn, err := net.Dial("unix", strings.TrimPrefix(address, "unix://"))
	if err != nil {
		t.Fatal(err)
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	task := taskapi.NewTaskClient(client)
	ctx := namespaces.WithNamespace(context.Background(), "test")
	opts, err := typeurl.MarshalAny(&options.Options{Root: runcRoot})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.Create(ctx, &taskapi.CreateTaskRequest{Id: id, Bundle: bundle, Options: opts}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := task.Start(ctx, &taskapi.StartRequest{Id: id}); err != nil {
		t.Fatalf("start: %v", err)
	}
	wr, err := task.Wait(ctx, &taskapi.WaitRequest{Id: id})
	if err != nil || wr.ExitStatus != 7 {
		t.Fatalf("wait: %v %v", wr, err)
	}
	if _, err := task.Delete(ctx, &taskapi.DeleteRequest{Id: id}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	task.Shutdown(ctx, &taskapi.ShutdownRequest{Id: id})
}

// TestSpareTakesTask: a spare shim handed a task serves it like a shim
// started for it, and exits when the task is done.
func TestSpareTakesTask(t *testing.T) {
	bundle := testbundle.New(t, []string{"sh", "-c", "exit 7"}, nil)
	address, env, ev := fakeDaemon(t)
	spare, err := StartSpare(testShim, address, env)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := LaunchWith(ctx, Config{Namespace: "test", ID: "spare1", Address: address, Bundle: bundle}, testShim, nil, env, os.Getpid(), spare)
	if err != nil {
		t.Fatal(err)
	}
	if l.Cmd != spare.Cmd {
		t.Fatal("LaunchWith started a new shim instead of using the spare")
	}
	if b, _ := os.ReadFile(filepath.Join(bundle, AddressFile)); string(b) != l.Address {
		t.Fatalf("address file %q, launched %q", b, l.Address)
	}
	// ps shows it as the task's shim, not as a spare.
	want := "\x00-namespace\x00test\x00-id\x00spare1\x00-address\x00" + address + "\x00"
	var cmdline []byte
	for i := 0; i < 500; i++ {
		cmdline, _ = os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", l.Cmd.Process.Pid))
		if strings.Contains(string(cmdline), want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(string(cmdline), want) || strings.Contains(string(cmdline), SpareFlag) {
		t.Fatalf("adopted spare's command line %q, want it to contain %q", cmdline, want)
	}
	runTask(t, l.Address, bundle, "spare1", filepath.Join(t.TempDir(), "runc"))
	waitExit(t, l.Cmd)
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if got := strings.Join(ev.topics, " "); got != "/tasks/create /tasks/start /tasks/exit /tasks/delete" {
		t.Fatalf("events %q", got)
	}
}

// TestSpareExitsUnused: a spare whose daemon lets it go (or dies) exits.
func TestSpareExitsUnused(t *testing.T) {
	testbundle.Skip(t)
	address, env, _ := fakeDaemon(t)
	spare, err := StartSpare(testShim, address, env)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { spare.Discard(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		spare.Cmd.Process.Kill()
		t.Fatal("unused spare did not exit")
	}
}

// TestDeadSpareFallsBack: a spare that died is passed over; the task gets
// a shim started the usual way.
func TestDeadSpareFallsBack(t *testing.T) {
	bundle := testbundle.New(t, []string{"sh", "-c", "exit 7"}, nil)
	address, env, _ := fakeDaemon(t)
	spare, err := StartSpare(testShim, address, env)
	if err != nil {
		t.Fatal(err)
	}
	spare.Cmd.Process.Signal(syscall.SIGKILL)
	for i := 0; i < 500 && !testbundle.Exited(spare.Cmd.Process.Pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	l, err := LaunchWith(context.Background(), Config{Namespace: "test", ID: "fallback", Address: address, Bundle: bundle}, testShim, nil, env, os.Getpid(), spare)
	if err != nil {
		t.Fatal(err)
	}
	if l.Cmd == spare.Cmd {
		t.Fatal("LaunchWith used a dead spare")
	}
	runTask(t, l.Address, bundle, "fallback", filepath.Join(t.TempDir(), "runc"))
	waitExit(t, l.Cmd)
}
