package service

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// teardownNice is the nice value of a deleted container's teardown.
const teardownNice = 19

// lowPriorityThread puts the calling goroutine on a thread of its own at
// the lowest CPU priority, for the rest of its life (the thread ends with
// the goroutine, so nothing else runs on it). Children forked from it,
// runc delete, inherit the nice value, as does the overlay's sync when the
// thread closes the last reference to the rootfs. A container's teardown
// is background work nobody waits for, so it takes the CPU only when the
// client finishing its delete and the next container's start leave it
// idle: on a small node that is a few milliseconds off every `ctr run
// --rm` (measured: ~1.5-2 ms of ~50 here), and a burst of starts is not
// slowed by the teardowns of earlier containers. The thread holds the
// shim's one P only while it runs Go code (the fork, a little bookkeeping),
// not while it waits for runc or the unmount; in a shim with several
// containers that is the only time their calls could wait on it.
func lowPriorityThread() {
	runtime.LockOSThread()
	// On Linux the nice value belongs to the thread: who 0 is this one.
	_ = unix.Setpriority(unix.PRIO_PROCESS, 0, teardownNice)
}
