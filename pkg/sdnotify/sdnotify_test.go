package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func listen(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	for _, tc := range []struct{ name, addr string }{
		{"path", filepath.Join(t.TempDir(), "notify.sock")},
		{"abstract", fmt.Sprintf("@berth-sdnotify-test-%d", os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := listen(t, tc.addr)
			t.Setenv(SocketEnv, tc.addr)
			for _, msg := range []string{Ready, Stopping} {
				sent, err := Notify(msg)
				if err != nil || !sent {
					t.Fatalf("notify %s: %v %v", msg, sent, err)
				}
				if got := read(t, c); got != msg {
					t.Fatalf("got %q, want %q", got, msg)
				}
			}
		})
	}
}

func TestNotifyUnset(t *testing.T) {
	t.Setenv(SocketEnv, "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Fatalf("unset: %v %v", sent, err)
	}
}

func TestNotifyErrors(t *testing.T) {
	for _, addr := range []string{"relative.sock", filepath.Join(t.TempDir(), "nobody.sock")} {
		if err := NotifyTo(addr, Ready); err == nil {
			t.Errorf("%s: no error", addr)
		}
	}
}
