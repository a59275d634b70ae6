package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/pkg/errdefs"
	"golang.org/x/sys/unix"
)

const lockFile = "berthd.lock"

// lockRoot takes an exclusive flock on <root>/berthd.lock so a second daemon
// on the same root fails at once instead of corrupting the first one's
// bolt files. The kernel drops the lock when the process dies, so a crash
// never leaves a stale lock behind.
func lockRoot(root string) (*os.File, error) {
	path := filepath.Join(root, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another berthd is running with root %s: %w", root, errdefs.ErrUnavailable)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Record who holds it, for humans; the flock is what counts.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return f, nil
}

func unlockRoot(f *os.File) error {
	if f == nil {
		return nil
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return f.Close()
}
