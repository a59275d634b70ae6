package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-containers/berth/pkg/log"
	"golang.org/x/sys/unix"
)

var (
	tempMu       sync.RWMutex
	tempLocation = os.TempDir()
)

// SetTempLocation sets the directory WithTempMount makes its mount points
// in; the daemon points it inside its root so stray mounts are found there.
func SetTempLocation(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("temp mount location %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return fmt.Errorf("temp mount location: %w", err)
	}
	tempMu.Lock()
	tempLocation = abs
	tempMu.Unlock()
	return nil
}

// WithTempMount mounts mounts on a fresh temporary directory, calls fn with
// it, and always unmounts and removes it again. fn's error comes first;
// a failure to unmount is returned too, since it leaks a mount.
func WithTempMount(ctx context.Context, mounts []Mount, fn func(root string) error) (err error) {
	tempMu.RLock()
	parent := tempLocation
	tempMu.RUnlock()
	root, err := os.MkdirTemp(parent, "berth-mount")
	if err != nil {
		return fmt.Errorf("temp mount: create mount point: %w", err)
	}
	defer func() {
		uerr := UnmountAll(root, 0)
		if uerr != nil {
			// Busy even after retries: detach it so the tree goes away
			// when its last user does, rather than leaking it.
			log.G(ctx).WithError(uerr).WithField("target", root).Warn("temp mount busy, detaching")
			if derr := UnmountAll(root, unix.MNT_DETACH); derr == nil {
				uerr = nil
			}
		}
		if uerr == nil {
			// Remove, never RemoveAll: if anything were still mounted
			// here, RemoveAll would delete the mounted files.
			if rerr := os.Remove(root); rerr != nil {
				uerr = fmt.Errorf("temp mount: remove mount point: %w", rerr)
			}
		} else {
			uerr = fmt.Errorf("temp mount: %w", uerr)
		}
		err = errors.Join(err, uerr)
	}()
	if err := All(mounts, root); err != nil {
		return fmt.Errorf("temp mount: %w", err)
	}
	return fn(root)
}
