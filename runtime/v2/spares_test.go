package v2

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// fakeShim writes a stand-in for the shim binary: like a spare, it reads
// fd 3 until the daemon closes it, then exits.
func fakeShim(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexec cat <&3 >/dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func waitReady(t *testing.T, p *spares, bin string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		p.mu.Lock()
		ok := p.ready[bin] != nil
		p.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no spare became ready")
}

// TestSpares: the first take starts a spare for the next; a spare of a
// binary replaced since is let go instead of handed out; close reaps the
// ready ones.
func TestSpares(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "containerd-shim-berth-v2")
	fakeShim(t, bin)
	p := newSpares("/run/test.sock", os.Environ())
	if s := p.take(bin); s != nil {
		t.Fatal("a spare before any was started")
	}
	waitReady(t, p, bin)
	s := p.take(bin)
	if s == nil {
		t.Fatal("no spare handed out")
	}
	s.Discard()

	// Replaced (a new file, as an upgrade writes): the waiting spare is stale.
	waitReady(t, p, bin)
	os.Remove(bin)
	fakeShim(t, bin)
	if s := p.take(bin); s != nil {
		s.Discard()
		t.Fatal("a spare of the replaced binary was handed out")
	}
	waitReady(t, p, bin)
	p.mu.Lock()
	pid := p.ready[bin].Cmd.Process.Pid
	p.mu.Unlock()
	p.close()
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
		t.Fatalf("spare %d still there after close", pid)
	}
	if s := p.take(bin); s != nil {
		t.Fatal("take after close handed out a spare")
	}
}
