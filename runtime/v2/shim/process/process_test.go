package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestInitExitStatus(t *testing.T) {
	out := mkfifo(t, "stdout")
	got := readFifo(t, out)
	p := newInit(t, "exit3", []string{"sh", "-c", "echo bye; exit 3"}, Stdio{Stdout: out, Stderr: out}, nil)
	if p.Status() != Created || p.Pid() == 0 {
		t.Fatalf("after create: %s pid %d", p.Status(), p.Pid())
	}
	start(t, p)
	if code := waitExit(t, p); code != 3 {
		t.Fatalf("exit status %d, want 3", code)
	}
	if p.ExitedAt().IsZero() || p.Status() != Stopped {
		t.Fatalf("after exit: %s at %v", p.Status(), p.ExitedAt())
	}
	if s := recv(t, got); s != "bye\n" {
		t.Fatalf("stdout %q", s)
	}
	if err := p.Kill(testContext(), 9, false); !errdefs.IsNotFound(err) {
		t.Fatalf("kill after exit: %v, want not found", err)
	}
	if err := p.Delete(testContext()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := p.Delete(testContext()); !errdefs.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestInitKill(t *testing.T) {
	p := newInit(t, "kill", []string{"sleep", "30"}, Stdio{}, nil)
	start(t, p)
	if err := p.Delete(testContext()); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("delete running: %v", err)
	}
	if err := p.Kill(testContext(), int(unix.SIGKILL), false); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, p); code != 137 {
		t.Fatalf("exit status %d, want 137", code)
	}
}

func TestDeleteCreated(t *testing.T) {
	p := newInit(t, "created", []string{"sleep", "30"}, Stdio{}, nil)
	if err := p.Delete(testContext()); err != nil {
		t.Fatalf("delete created: %v", err)
	}
	if code := waitExit(t, p); code != 137 {
		t.Fatalf("exit status %d, want 137", code)
	}
}

func TestPauseResumePids(t *testing.T) {
	ctx := testContext()
	p := newInit(t, "pause", []string{"sleep", "30"}, Stdio{}, nil)
	if err := p.Pause(ctx); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("pause created: %v", err)
	}
	start(t, p)
	pids, err := p.Pids(ctx)
	if err != nil || len(pids) != 1 || pids[0] != p.Pid() {
		t.Fatalf("pids %v %v, init %d", pids, err, p.Pid())
	}
	if err := p.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Status() != Paused {
		t.Fatalf("status %s", p.Status())
	}
	if st, _ := p.Runtime().State(ctx, "pause"); st.Status != "paused" {
		t.Fatalf("runc status %s", st.Status)
	}
	if err := p.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Status() != Running {
		t.Fatalf("status %s", p.Status())
	}
	limit := int64(32 << 20)
	if err := p.Update(ctx, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func TestExec(t *testing.T) {
	ctx := testContext()
	p := newInit(t, "exec", []string{"sleep", "30"}, Stdio{}, nil)
	proc := &specs.Process{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 5"}, Cwd: "/", Env: []string{"PATH=/bin"}}
	if _, err := p.NewExec("e1", proc, Stdio{}); err != nil {
		t.Fatal(err)
	}
	e, _ := p.NewExec("e1", proc, Stdio{})
	if err := e.Start(ctx); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("exec in created container: %v", err)
	}
	start(t, p)

	outPath, errPath := mkfifo(t, "out"), mkfifo(t, "err")
	outC, errC := readFifo(t, outPath), readFifo(t, errPath)
	e, err := p.NewExec("e2", proc, Stdio{Stdout: outPath, Stderr: errPath})
	if err != nil {
		t.Fatal(err)
	}
	start(t, e)
	if code := waitExit(t, e); code != 5 {
		t.Fatalf("exec exit %d, want 5", code)
	}
	if o, er := recv(t, outC), recv(t, errC); o != "out\n" || er != "err\n" {
		t.Fatalf("stdout %q stderr %q", o, er)
	}
	if err := e.Kill(ctx, 9, false); !errdefs.IsNotFound(err) {
		t.Fatalf("kill exited exec: %v", err)
	}
	if err := e.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p.Bundle(), "e2.pid")); !os.IsNotExist(err) {
		t.Fatalf("pid file left: %v", err)
	}

	// Many short-lived execs: each exit must reach its process even when it
	// happens before runc exec returns.
	for i := 0; i < 5; i++ {
		e, _ := p.NewExec(fmt.Sprintf("fast%d", i), &specs.Process{Args: []string{"true"}, Cwd: "/", Env: []string{"PATH=/bin"}}, Stdio{})
		start(t, e)
		if code := waitExit(t, e); code != 0 {
			t.Fatalf("fast exec exit %d", code)
		}
	}

	bad, _ := p.NewExec("bad", &specs.Process{Args: []string{"nosuch"}, Cwd: "/", Env: []string{"PATH=/bin"}}, Stdio{})
	started := tracker.Starting()
	err = bad.Start(ctx)
	started(nil)
	if err == nil || !strings.Contains(err.Error(), `exec: "nosuch": executable file not found in $PATH`) {
		t.Fatalf("exec nosuch: %v", err)
	}

	// A long one killed with SIGKILL.
	long, _ := p.NewExec("long", &specs.Process{Args: []string{"sleep", "30"}, Cwd: "/", Env: []string{"PATH=/bin"}}, Stdio{})
	start(t, long)
	if err := long.Kill(ctx, int(unix.SIGKILL), false); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, long); code != 137 {
		t.Fatalf("killed exec exit %d", code)
	}
}

func TestStdinCloseIO(t *testing.T) {
	in, out := mkfifo(t, "in"), mkfifo(t, "out")
	got := readFifo(t, out)
	p := newInit(t, "stdin", []string{"cat"}, Stdio{Stdin: in, Stdout: out}, nil)
	start(t, p)
	w, err := os.OpenFile(in, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello\n"))
	w.Close()
	// The client closed its end, but cat keeps running until CloseIO.
	select {
	case <-p.Done():
		t.Fatal("cat exited before CloseIO")
	case <-time.After(100 * time.Millisecond):
	}
	if err := p.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, p); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if s := recv(t, got); s != "hello\n" {
		t.Fatalf("stdout %q", s)
	}
}

func TestTerminal(t *testing.T) {
	in, out := mkfifo(t, "in"), mkfifo(t, "out")
	got := readFifo(t, out)
	p := newInit(t, "tty", []string{"sh"}, Stdio{Stdin: in, Stdout: out, Terminal: true}, nil)
	start(t, p)
	if err := p.Resize(console.WinSize{Width: 100, Height: 40}); err != nil {
		t.Fatalf("resize: %v", err)
	}
	w, err := os.OpenFile(in, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// The arithmetic keeps the answer out of the echoed input.
	fmt.Fprintf(w, "echo hi $((40+2)); stty size; exit 7\n")
	if code := waitExit(t, p); code != 7 {
		t.Fatalf("exit %d, want 7", code)
	}
	s := recv(t, got)
	if !strings.Contains(s, "hi 42") || !strings.Contains(s, "40 100") {
		t.Fatalf("terminal output %q", s)
	}
}

func TestExecTerminal(t *testing.T) {
	p := newInit(t, "exectty", []string{"sleep", "30"}, Stdio{}, nil)
	start(t, p)
	out := mkfifo(t, "out")
	got := readFifo(t, out)
	e, _ := p.NewExec("tty", &specs.Process{Args: []string{"sh", "-c", "tty; exit 2"}, Cwd: "/", Env: []string{"PATH=/bin"}, Terminal: true}, Stdio{Stdout: out})
	start(t, e)
	if code := waitExit(t, e); code != 2 {
		t.Fatalf("exit %d", code)
	}
	if err := e.Delete(testContext()); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, got); !strings.Contains(s, "/dev/pts/") {
		t.Fatalf("tty output %q", s)
	}
}

func TestFileLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "logs", "c.log")
	if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(log, []byte("old\n"), 0o644)
	uri := "file://" + log
	p := newInit(t, "filelog", []string{"sh", "-c", "echo out; echo err >&2"}, Stdio{Stdout: uri, Stderr: uri}, nil)
	start(t, p)
	waitExit(t, p)
	if err := p.Delete(testContext()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(log)
	if !bytes.HasPrefix(b, []byte("old\n")) || !bytes.Contains(b, []byte("out\n")) || !bytes.Contains(b, []byte("err\n")) {
		t.Fatalf("log %q", b)
	}
}

func TestBinaryLog(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "out.log")
	script := filepath.Join(dir, "logger")
	os.WriteFile(script, []byte(`#!/bin/sh
echo "$CONTAINER_NAMESPACE/$CONTAINER_ID" > "$1"
cat <&4 >> "$1.err" 5>&- &
exec 5>&-
cat <&3 >> "$1"
wait
`), 0o755)
	uri := "binary://" + script + "?" + logFile
	p := newInit(t, "binlog", []string{"sh", "-c", "echo out; echo err >&2"}, Stdio{Stdout: uri, Stderr: uri}, nil)
	start(t, p)
	waitExit(t, p)
	if err := p.Delete(testContext()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(logFile)
	if string(b) != "test/binlog\nout\n" {
		t.Fatalf("log %q", b)
	}
	if b, _ := os.ReadFile(logFile + ".err"); string(b) != "err\n" {
		t.Fatalf("stderr log %q", b)
	}
}

func TestBadURI(t *testing.T) {
	_, err := newIO(testContext(), "x", Stdio{Stdout: "http://example.com/x"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
}
