package archive

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// removeAt removes name from the directory pfd, recursively if it is a
// directory, without following any symlink: every step is relative to a
// descriptor of a directory already inside the tree. A missing name is not
// an error.
func removeAt(pfd int, name string) error {
	err := unix.Unlinkat(pfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, oerr := unix.Openat(pfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		return err // not a directory after all: report the unlink failure
	}
	err = emptyDir(fd)
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// emptyDir removes everything inside the directory fd.
func emptyDir(fd int) error {
	names, err := readDirNames(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := removeAt(fd, n); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	return nil
}
