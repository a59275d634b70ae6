// Package sdnotify tells systemd about the daemon's state (Type=notify
// units): one datagram per message on the unix socket named by
// NOTIFY_SOCKET. Written here rather than pulled in because it is a dozen
// lines of protocol.
package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// The messages berthd sends.
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Reloading = "RELOADING=1"
)

// SocketEnv names the socket systemd listens on.
const SocketEnv = "NOTIFY_SOCKET"

// Notify sends state to the socket in $NOTIFY_SOCKET. It reports false with
// no error when the variable is unset (not run by systemd).
func Notify(state string) (bool, error) {
	addr := os.Getenv(SocketEnv)
	if addr == "" {
		return false, nil
	}
	if err := NotifyTo(addr, state); err != nil {
		return false, err
	}
	return true, nil
}

// NotifyTo sends state to the notify socket at addr: a path, or an abstract
// socket written "@name" (Go maps the leading '@' to the abstract
// namespace's NUL byte).
func NotifyTo(addr, state string) error {
	if addr == "" || (addr[0] != '/' && addr[0] != '@') {
		return fmt.Errorf("notify socket %q: must be an absolute path or start with '@'", addr)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("dial notify socket %s: %w", addr, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify %s: %w", addr, err)
	}
	return nil
}
