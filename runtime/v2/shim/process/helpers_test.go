package process

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/runtime/v2/shim/internal/testbundle"
	"github.com/berth-containers/berth/runtime/v2/shim/reaper"
	"github.com/berth-containers/berth/runtime/v2/shim/runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var tracker *Tracker

func TestMain(m *testing.M) {
	if err := reaper.SetSubreaper(); err != nil {
		panic(err)
	}
	tracker = NewTracker(reaper.Default, nil)
	os.Exit(m.Run())
}

func testContext() context.Context {
	return namespaces.WithNamespace(context.Background(), "test")
}

// newInit creates (not starts) a container running args and removes it
// when the test ends, whatever happened.
func newInit(t *testing.T, id string, args []string, stdio Stdio, edit func(*specs.Spec)) *Init {
	t.Helper()
	bundle := testbundle.New(t, args, func(s *specs.Spec) {
		s.Process.Terminal = stdio.Terminal
		if edit != nil {
			edit(s)
		}
	})
	r := &runc.Runc{Root: filepath.Join(t.TempDir(), "runc"), Log: filepath.Join(bundle, "log.json")}
	p := NewInit(InitConfig{ID: id, Bundle: bundle, Runtime: r, Stdio: stdio})
	started := tracker.Starting()
	err := p.Create(testContext())
	if err != nil {
		started(nil)
		t.Fatalf("create: %v", err)
	}
	started(p)
	t.Cleanup(func() {
		ctx := context.Background()
		_ = r.Kill(ctx, id, 9, true)
		_ = r.Delete(ctx, id, true)
		if p.Status() != Deleted {
			_ = p.Delete(ctx)
		}
	})
	return p
}

// start starts p bracketed by the tracker, as the shim does.
func start(t *testing.T, p Process) {
	t.Helper()
	started := tracker.Starting()
	err := p.Start(testContext())
	if err != nil {
		started(nil)
		t.Fatalf("start %s: %v", p.ID(), err)
	}
	started(p)
}

func waitExit(t *testing.T, p Process) int {
	t.Helper()
	select {
	case <-p.Done():
		return p.ExitStatus()
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit", p.ID())
	}
	return -1
}

func mkfifo(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readFifo reads the FIFO as a client would until the shim closes it.
func readFifo(t *testing.T, path string) <-chan string {
	t.Helper()
	out := make(chan string, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			out <- "open: " + err.Error()
			return
		}
		defer f.Close()
		var b bytes.Buffer
		io.Copy(&b, f)
		out <- b.String()
	}()
	return out
}

func recv(t *testing.T, c <-chan string) string {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no output")
	}
	return ""
}
