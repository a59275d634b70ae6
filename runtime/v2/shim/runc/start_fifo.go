package runc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// execFifo is the FIFO runc's init blocks on, in the container's state
// folder, until `runc start` opens it: the init then writes a byte and
// execs the container's command.
const execFifo = "exec.fifo"

// fifoPoll is how often a start waiting on the FIFO checks that the init
// still lives (runc start's own interval).
const fifoPoll = 100 * time.Millisecond

// StartByFifo does what `runc start` does for a created container: opens
// its exec FIFO, which releases the init, reads the init's byte and removes
// the FIFO (from then on runc reports the container running). It spares a
// runc process, about 5 ms, on every container start. It reports false,
// and does nothing, when the container has no such FIFO (a runtime that
// works otherwise): the caller then runs `runc start`. The caller makes
// sure no poststart hook waits to be run by `runc start`.
func (r *Runc) StartByFifo(ctx context.Context, id string, pid int) (bool, error) {
	path := filepath.Join(r.Root, id, execFifo)
	if st, err := os.Lstat(path); err != nil || st.Mode().Type() != os.ModeNamedPipe {
		return false, nil
	}
	// Opening a FIFO to read blocks until a writer opens it: the init does
	// as soon as it is ready; if it died first, nobody ever will.
	ch := make(chan fifoOpen, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
		ch <- fifoOpen{f, err}
	}()
	tick := time.NewTicker(fifoPoll)
	defer tick.Stop()
	for {
		select {
		case o := <-ch:
			if o.err != nil {
				return true, fmt.Errorf("start %s: open exec fifo: %w", id, o.err)
			}
			return true, finishFifo(id, path, o.f)
		case <-tick.C:
			if pid > 0 && unix.Kill(pid, 0) == unix.ESRCH {
				// The init is gone, perhaps after writing its byte; what it
				// wrote is read without waiting for a writer.
				err := errors.New("container init is already dead")
				f, oerr := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
				releaseOpener(path, ch) // while the FIFO still has its name
				if oerr == nil && finishFifo(id, path, f) == nil {
					err = nil
				}
				if err != nil {
					return true, fmt.Errorf("start %s: %w", id, err)
				}
				return true, nil
			}
		case <-ctx.Done():
			releaseOpener(path, ch)
			return true, fmt.Errorf("start %s: %w", id, ctx.Err())
		}
	}
}

// finishFifo reads the init's byte from f and removes the FIFO, as runc
// start does; no byte means the init was started before.
func finishFifo(id, path string, f *os.File) error {
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("start %s: read exec fifo: %w", id, err)
	}
	if len(data) == 0 {
		return fmt.Errorf("start %s: cannot start an already running container", id)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("start %s: remove exec fifo: %w", id, err)
	}
	return nil
}

// fifoOpen is the outcome of the blocking open of the exec FIFO.
type fifoOpen struct {
	f   *os.File
	err error
}

// releaseOpener unblocks the goroutine still opening the FIFO to read (a
// read-write open counts as a writer) and closes what it opened, so that
// no thread stays blocked in open for the shim's life.
func releaseOpener(path string, ch chan fifoOpen) {
	if w, err := os.OpenFile(path, os.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
		w.Close()
	}
	go func() {
		if o := <-ch; o.f != nil {
			o.f.Close()
		}
	}()
}
