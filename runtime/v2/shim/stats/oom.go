package stats

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// WatchOOM calls fn, on a goroutine of its own, each time the cgroup's
// memory limit makes the kernel kill (or, on v1, want to kill) a process,
// until the cgroup is removed or stop is called. On v1 this is the
// memory.oom_control eventfd; on v2 an inotify watch on memory.events,
// whose oom_kill counter is compared with the last one seen.
func (c *Cgroup) WatchOOM(fn func()) (stop func(), err error) {
	if c.V2 != "" {
		return c.watchV2(fn)
	}
	dir, ok := c.dir("memory")
	if !ok {
		return nil, fmt.Errorf("watch oom: no memory cgroup")
	}
	return watchV1(dir, fn)
}

func watchV1(dir string, fn func()) (func(), error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch oom: eventfd: %w", err)
	}
	// Non-blocking: the Go poller waits for it and Close wakes the reader.
	ev := os.NewFile(uintptr(efd), "oom-eventfd")
	oc, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		ev.Close()
		return nil, fmt.Errorf("watch oom: %w", err)
	}
	defer oc.Close()
	reg := strconv.Itoa(efd) + " " + strconv.Itoa(int(oc.Fd()))
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(reg), 0); err != nil {
		ev.Close()
		return nil, fmt.Errorf("watch oom: register eventfd: %w", err)
	}
	go func() {
		defer ev.Close()
		buf := make([]byte, 8)
		for {
			if _, err := ev.Read(buf); err != nil {
				return
			}
			// The eventfd also fires when the cgroup is removed.
			if _, err := os.Stat(dir); err != nil {
				return
			}
			for n := binary.NativeEndian.Uint64(buf); n > 0; n-- {
				fn()
			}
		}
	}()
	return closer(ev), nil
}

func (c *Cgroup) watchV2(fn func()) (func(), error) {
	events := filepath.Join(c.V2, "memory.events")
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch oom: inotify: %w", err)
	}
	in := os.NewFile(uintptr(fd), "oom-inotify")
	if _, err := unix.InotifyAddWatch(fd, events, unix.IN_MODIFY); err != nil {
		in.Close()
		return nil, fmt.Errorf("watch oom: watch %s: %w", events, err)
	}
	last := readKV(c.V2, "memory.events")["oom_kill"]
	go func() {
		defer in.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := in.Read(buf); err != nil {
				return
			}
			kv := readKV(c.V2, "memory.events")
			if kv == nil {
				return // cgroup removed
			}
			for ; last < kv["oom_kill"]; last++ {
				fn()
			}
		}
	}()
	return closer(in), nil
}

func closer(f *os.File) func() {
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }
}
