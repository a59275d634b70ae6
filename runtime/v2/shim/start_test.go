package shim

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/ttrpc"

	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/runtime/v2/shim/internal/testbundle"
)

// A shim told to shut down has removed its socket's path by the time it
// answers: the next shim of the same container id, which the daemon may
// start at once, gets that path, and the departing shim must neither be
// found there nor remove it afterwards.
func TestShutdownUnlinksSocketBeforeReply(t *testing.T) {
	bundle := testbundle.New(t, []string{"true"}, nil)
	address, env, _ := fakeDaemon(t)
	l, err := Launch(context.Background(), Config{Namespace: "test", ID: "bye", Address: address, Bundle: bundle}, testShim, nil, env, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	path := socketPath(l.Address)
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), "test")
	// The reply can lose the race with the connection's close (the daemon
	// takes ErrClosed from Shutdown as the shim having gone, too); either
	// way the path is gone by then.
	if _, err := taskapi.NewTaskClient(client).Shutdown(ctx, &taskapi.ShutdownRequest{Id: "bye"}); err != nil && !errors.Is(err, ttrpc.ErrClosed) {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket %s still there after the shutdown's reply: %v", path, err)
	}
	client.Close()
	waitExit(t, l.Cmd)
}

// A socket at a container's own address that still accepts (the shim of a
// task of that id, deleted and on its way out) is not taken for the new
// task's shim: a new shim is started and serves the task.
func TestLaunchIgnoresDepartingShim(t *testing.T) {
	bundle := testbundle.New(t, []string{"sh", "-c", "exit 7"}, nil)
	address, env, _ := fakeDaemon(t)
	old := SocketAddress(address, "test", "again")
	os.MkdirAll(filepath.Dir(socketPath(old)), 0o711)
	departing, err := net.Listen("unix", socketPath(old))
	if err != nil {
		t.Fatal(err)
	}
	defer departing.Close()
	go func() {
		for {
			c, err := departing.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	l, err := Launch(context.Background(), Config{Namespace: "test", ID: "again", Address: address, Bundle: bundle}, testShim, nil, env, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if l.Cmd == nil {
		t.Fatal("the departing shim's socket was taken for the new task")
	}
	if !strings.HasSuffix(l.Address, filepath.Base(socketPath(old))) {
		t.Fatalf("address %q, want the container's own %q", l.Address, old)
	}
	runTask(t, l.Address, bundle, "again", filepath.Join(t.TempDir(), "runc"))
	waitExit(t, l.Cmd)
}
