package runc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/runtime/v2/shim/internal/testbundle"
	"github.com/berth-containers/berth/runtime/v2/shim/reaper"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMain(m *testing.M) {
	// Containers are re-parented to us when runc exits; be their reaper so
	// they do not linger as zombies of pid 1.
	if err := reaper.SetSubreaper(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

func newRunc(t *testing.T, bundle string) *Runc {
	return &Runc{Root: filepath.Join(t.TempDir(), "runc"), Log: filepath.Join(bundle, "log.json")}
}

// create makes a created container and deletes it when the test ends.
func create(t *testing.T, r *Runc, id, bundle string, opts CreateOpts) {
	t.Helper()
	ctx := context.Background()
	if err := r.Create(ctx, id, bundle, opts); err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { _ = r.Delete(context.Background(), id, true) })
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	bundle := testbundle.New(t, []string{"sleep", "30"}, nil)
	r := newRunc(t, bundle)
	pidFile := filepath.Join(bundle, "init.pid")
	create(t, r, "life", bundle, CreateOpts{PidFile: pidFile})

	st, err := r.State(ctx, "life")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "created" || st.Pid == 0 {
		t.Fatalf("state after create: %+v", st)
	}
	if err := r.Start(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	if st, _ = r.State(ctx, "life"); st.Status != "running" {
		t.Fatalf("state after start: %s", st.Status)
	}
	pids, err := r.Ps(ctx, "life")
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 || pids[0] != st.Pid {
		t.Fatalf("ps: %v, init %d", pids, st.Pid)
	}

	if err := r.Pause(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	if st, _ = r.State(ctx, "life"); st.Status != "paused" {
		t.Fatalf("state after pause: %s", st.Status)
	}
	if err := r.Resume(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	limit := int64(64 << 20)
	if err := r.Update(ctx, "life", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
		t.Fatalf("update: %v", err)
	}

	if err := r.Kill(ctx, "life", 9, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.Status != "stopped" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		st, _ = r.State(ctx, "life")
	}
	if st.Status != "stopped" {
		t.Fatalf("state after kill: %s", st.Status)
	}
	if err := r.Delete(ctx, "life", false); err != nil {
		t.Fatal(err)
	}
	_, err = r.State(ctx, "life")
	if !errdefs.IsNotFound(err) {
		t.Fatalf("state after delete: %v, want not found", err)
	}
	if !strings.Contains(err.Error(), "runc state: container does not exist") {
		t.Fatalf("error text: %v", err)
	}
}

func TestCreateErrorFromLog(t *testing.T) {
	bundle := testbundle.New(t, []string{"nosuch"}, nil)
	r := newRunc(t, bundle)
	err := r.Create(context.Background(), "nosuch", bundle, CreateOpts{})
	t.Cleanup(func() { _ = r.Delete(context.Background(), "nosuch", true) })
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("create: %v, want *Error", err)
	}
	if !strings.Contains(err.Error(), `exec: "nosuch": executable file not found in $PATH`) {
		t.Fatalf("create error: %v", err)
	}
}

func TestExecAndConsole(t *testing.T) {
	ctx := context.Background()
	bundle := testbundle.New(t, []string{"sleep", "30"}, nil)
	r := newRunc(t, bundle)
	create(t, r, "exec", bundle, CreateOpts{})
	if err := r.Start(ctx, "exec"); err != nil {
		t.Fatal(err)
	}

	// A failing exec reports runc's message.
	err := r.Exec(ctx, "exec", specs.Process{Args: []string{"nosuch"}, Cwd: "/", Env: []string{"PATH=/bin"}}, ExecOpts{Detach: true})
	if err == nil || !strings.Contains(err.Error(), `exec: "nosuch": executable file not found in $PATH`) {
		t.Fatalf("exec nosuch: %v", err)
	}

	// A terminal exec hands its pty master over the console socket.
	sock, err := NewConsoleSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	got := make(chan *os.File, 1)
	go func() {
		f, _ := sock.ReceiveMaster()
		got <- f
	}()
	pidFile := filepath.Join(bundle, "exec.pid")
	err = r.Exec(ctx, "exec", specs.Process{Args: []string{"echo", "hello"}, Cwd: "/", Env: []string{"PATH=/bin"}, Terminal: true},
		ExecOpts{Detach: true, PidFile: pidFile, ConsoleSocket: sock.Path()})
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	master := <-got
	if master == nil {
		t.Fatal("no pty master")
	}
	defer master.Close()
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _ := master.Read(buf)
	if !strings.Contains(string(buf[:n]), "hello") {
		t.Fatalf("pty read %q", buf[:n])
	}
	if _, err := os.Stat(pidFile); err != nil {
		t.Fatalf("pid file: %v", err)
	}
}
