package runc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStartByFifo plays runc's init on a FIFO of its own: the start
// releases it, reads its byte and removes the FIFO; without a FIFO it
// leaves the start to runc; a dead or already started init is an error.
func TestStartByFifo(t *testing.T) {
	deadPid := func() int {
		cmd := exec.Command("true")
		// Another test's reaper may reap it first (ECHILD): gone either way.
		if err := cmd.Run(); err != nil && !errors.Is(err, syscall.ECHILD) {
			t.Fatal(err)
		}
		return cmd.Process.Pid
	}
	for _, tc := range []struct {
		name    string
		noFifo  bool
		init    func(path string) // what the init does with the FIFO
		pid     func() int
		timeout time.Duration
		handled bool
		wantErr string
	}{
		{name: "no fifo", noFifo: true, handled: false},
		{name: "started", init: func(p string) {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err == nil {
				f.Write([]byte("0"))
				f.Close()
			}
		}, handled: true},
		{name: "already started", init: func(p string) {
			if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
				f.Close()
			}
		}, handled: true, wantErr: "already running"},
		{name: "init dead", pid: deadPid, handled: true, wantErr: "already dead"},
		{name: "cancelled", timeout: 50 * time.Millisecond, handled: true, wantErr: "deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			r := &Runc{Root: root}
			path := filepath.Join(root, "c1", execFifo)
			if !tc.noFifo {
				os.MkdirAll(filepath.Dir(path), 0o700)
				if err := unix.Mkfifo(path, 0o622); err != nil {
					t.Fatal(err)
				}
			}
			if tc.init != nil {
				go tc.init(path)
			}
			pid := os.Getpid()
			if tc.pid != nil {
				pid = tc.pid()
			}
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			handled, err := r.StartByFifo(ctx, "c1", pid)
			if handled != tc.handled {
				t.Fatalf("handled = %v, want %v", handled, tc.handled)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); handled && !os.IsNotExist(err) {
				t.Fatalf("exec fifo left after the start: %v", err)
			}
		})
	}
}

func TestEnvWithout(t *testing.T) {
	got := EnvWithout([]string{"A=1", "NOTIFY_SOCKET=/run/x", "NOTIFY_SOCKETX=2", "LISTEN_FDS=3", "B="}, "NOTIFY_SOCKET", "LISTEN_FDS")
	if strings.Join(got, " ") != "A=1 NOTIFY_SOCKETX=2 B=" {
		t.Fatalf("EnvWithout = %q", got)
	}
}
