package client

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// New fails at once with the dial's reason when nothing listens, and after
// its timeout when something listens but never speaks gRPC.
func TestNewConnectErrors(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	_, err := New(filepath.Join(dir, "missing.sock"), WithTimeout(5*time.Second))
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "no such file or directory") || time.Since(start) > 2*time.Second {
		t.Fatalf("missing socket: %v after %v", err, time.Since(start))
	}

	silent := filepath.Join(dir, "silent.sock")
	l, err := net.Listen("unix", silent)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start = time.Now()
	_, err = New(silent, WithTimeout(300*time.Millisecond))
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("silent socket: %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("silent socket answered after %v, want ~300ms", d)
	}
}
