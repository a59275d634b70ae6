package reaper

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if err := SetSubreaper(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

func TestRunExitStatus(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"kill -KILL $$", 137},
		{"kill -TERM $$", 143},
	} {
		got, err := Default.Run(context.Background(), exec.Command("/bin/sh", "-c", tc.script))
		if err != nil {
			t.Fatalf("%q: %v", tc.script, err)
		}
		if got != tc.want {
			t.Errorf("%q: status %d, want %d", tc.script, got, tc.want)
		}
	}
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	status, err := Default.Run(ctx, exec.Command("/bin/sleep", "10"))
	if err == nil || status != 137 {
		t.Fatalf("got %d, %v; want 137 and a context error", status, err)
	}
}

// An orphan re-parented to us is reaped and reported to subscribers, not
// lost to a claimed waiter.
func TestSubscribeOrphan(t *testing.T) {
	sub := Default.Subscribe()
	defer Default.Unsubscribe(sub)

	out, err := os.CreateTemp(t.TempDir(), "pid")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("/bin/sh", "-c", "sleep 0.2 & echo $!")
	cmd.Stdout = out
	if status, err := Default.Run(context.Background(), cmd); err != nil || status != 0 {
		t.Fatalf("run: %d %v", status, err)
	}
	b, _ := os.ReadFile(out.Name())
	pid, err := strconv.Atoi(string(b[:len(b)-1]))
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-sub:
			if e.Pid == pid {
				if e.Status != 0 {
					t.Fatalf("orphan status %d", e.Status)
				}
				return
			}
		case <-timeout:
			t.Fatalf("no exit for orphan %d", pid)
		}
	}
}

func TestUnsubscribeCloses(t *testing.T) {
	sub := Default.Subscribe()
	Default.Unsubscribe(sub)
	select {
	case _, ok := <-sub:
		if ok {
			// a queued exit may still arrive; the channel must then close
			for range sub {
			}
		}
	case <-time.After(time.Second):
		t.Fatal("channel not closed")
	}
}
