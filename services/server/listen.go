package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// socketPath accepts "unix:///run/x.sock" as well as a bare path.
func socketPath(address string) string {
	return strings.TrimPrefix(address, "unix://")
}

// listenUnix opens a unix socket at address, owned by uid:gid with mode
// 0660. An existing socket that answers belongs to someone else and is an
// error; one that does not is left over from a crash and is replaced.
func listenUnix(address string, uid, gid int) (*net.UnixListener, error) {
	path := socketPath(address)
	if path == "" || !filepath.IsAbs(path) {
		return nil, fmt.Errorf("address %q must be an absolute socket path: %w", address, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("create socket dir for %s: %w", path, err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// Close unlinks the socket, so Stop leaves nothing behind.
	l.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := chownSocket(path, uid, gid); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		// Never delete a file we did not make.
		return fmt.Errorf("address %s exists and is not a socket: %w", path, errdefs.ErrFailedPrecondition)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("address %s is in use: %w", path, errdefs.ErrUnavailable)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// chownSocket gives the socket its configured owner. Unprivileged (tests,
// rootless) it only tries when asked for a specific owner.
func chownSocket(path string, uid, gid int) error {
	if os.Geteuid() != 0 && uid == 0 && gid == 0 {
		return nil
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("chown %s to %d:%d: %w", path, uid, gid, err)
	}
	return nil
}
