package mount

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Unmount retries for this long while the target is busy: a process that
// just exited may still hold it for a moment.
const (
	busyRetries = 50
	busyWait    = 20 * time.Millisecond
)

// Unmount unmounts target, retrying briefly while it is busy. flags are
// umount2(2) flags (unix.MNT_DETACH, ...).
func Unmount(target string, flags int) error {
	var err error
	for range busyRetries {
		err = unix.Unmount(target, flags)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(busyWait)
	}
	return &Error{Op: "unmount", Target: target, Err: err}
}

// UnmountAll unmounts target until it is no longer a mount point, for
// mounts stacked on one directory. A target that is not a mount point, or
// does not exist, is already done.
func UnmountAll(target string, flags int) error {
	// Bounded so a kernel that keeps saying yes cannot loop forever.
	for range 1024 {
		if err := Unmount(target, flags); err != nil {
			if isNotMounted(err) {
				return nil
			}
			return err
		}
	}
	return fmt.Errorf("unmount all on %q: still mounted after 1024 unmounts", target)
}
