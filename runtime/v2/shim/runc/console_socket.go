package runc

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ConsoleSocket is the unix socket a terminal container's pty master comes
// through: runc connects to it and sends the master fd with SCM_RIGHTS.
type ConsoleSocket struct {
	dir string
	l   *net.UnixListener
}

// NewConsoleSocket listens on a new socket in a private temporary directory
// (socket paths are limited to 108 bytes, so it stays short).
func NewConsoleSocket() (*ConsoleSocket, error) {
	dir, err := os.MkdirTemp("", "pty")
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	path := filepath.Join(dir, "pty.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: listen %s: %w", path, err)
	}
	return &ConsoleSocket{dir: dir, l: l}, nil
}

// Path is what to pass as --console-socket.
func (c *ConsoleSocket) Path() string {
	return filepath.Join(c.dir, "pty.sock")
}

// ReceiveMaster accepts runc's connection and returns the pty master it
// sends. The fd is made non-blocking so the Go poller serves it and Close
// interrupts a pending read.
func (c *ConsoleSocket) ReceiveMaster() (*os.File, error) {
	conn, err := c.l.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("console socket: accept: %w", err)
	}
	defer conn.Close()
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(name, oob)
	if err != nil {
		return nil, fmt.Errorf("console socket: receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("console socket: pty master: bad control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("console socket: pty master: want one fd: %v", err)
	}
	unix.CloseOnExec(fds[0])
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("console socket: pty master: set non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// Close stops listening and removes the socket; a pending ReceiveMaster
// returns an error.
func (c *ConsoleSocket) Close() error {
	err := c.l.Close()
	os.RemoveAll(c.dir)
	return err
}
