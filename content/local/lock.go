package local

import (
	"fmt"
	"os"
	"sync"

	"github.com/berth-containers/berth/pkg/errdefs"
	"golang.org/x/sys/unix"
)

// Ingest locks. One writer owns a ref at a time: in this process a map
// says so without races; across processes (a second daemon or a tool on
// the same root) an flock on the ingest's data file does, and the kernel
// drops it if the owner dies, so a crash never leaves a ref locked.
var (
	refLocksMu sync.Mutex
	refLocks   = map[string]struct{}{}
)

func lockRef(ref string) error {
	refLocksMu.Lock()
	defer refLocksMu.Unlock()
	if _, held := refLocks[ref]; held {
		return fmt.Errorf("ref %q locked: %w", ref, errdefs.ErrUnavailable)
	}
	refLocks[ref] = struct{}{}
	return nil
}

func unlockRef(ref string) {
	refLocksMu.Lock()
	delete(refLocks, ref)
	refLocksMu.Unlock()
}

// flockData takes the cross-process lock on an open data file.
func flockData(f *os.File, ref string) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EWOULDBLOCK:
			return fmt.Errorf("ref %q locked by another process: %w", ref, errdefs.ErrUnavailable)
		default:
			return fmt.Errorf("lock ingest ref %q: %w", ref, err)
		}
	}
}
