package server

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-containers/berth/pkg/log"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc"
)

// Returning memory after a burst of work.
//
// berthd's live heap is about a megabyte, but a burst of calls (an image
// import, twenty task starts) leaves several more behind: garbage the next
// GC cycle would free, sync.Pool buffers of a megabyte each (content reads,
// layer copies) that survive until the second GC after their last use, and
// heap pages that Go's background scavenger gives back only slowly, down to
// about the heap goal of the burst. An idle daemon allocates almost nothing,
// so no GC comes along for up to two minutes, and all of that stays
// resident: 3 to 4 MiB after one small image import, a sixth of the
// daemon's resident memory.
//
// So once calls stop and the heap stops growing, the releaser runs two
// GCs (the second frees the pool buffers the first moved to the pools'
// victim caches) and returns the free pages to the OS. It runs only when
// the daemon is quiet, on its own goroutine, so calls do not wait for it
// (one arriving meanwhile shares the CPU with it for a few ms); it costs
// about 2 ms of CPU for the two GCs and a few ms returning pages, once per
// burst, next to the several GC cycles the burst itself ran; and it gives
// back only what the runtime would give back anyway, sooner. A daemon
// that never goes quiet is left to the runtime.
const (
	// releaseQuiet is how long no call may start or end, the heap grow by
	// at most releaseQuietAlloc and the process use at most
	// releaseQuietCPU, before memory is released. Long calls that keep
	// working count as busy: a content write stream allocates, a layer
	// Apply (which allocates little) uses the CPU. Calls that only wait
	// (Tasks.Wait, an events subscription) do not. A second, not less: a
	// release costs the next call fresh page faults (measured ~3 ms on a
	// `ctr run` that followed 0.4 s of quiet), so commands a moment apart
	// must not pay it each time.
	releaseQuiet      = time.Second
	releaseQuietAlloc = 1 << 20
	releaseQuietCPU   = releaseQuiet / 20
	// releaseMinAlloc skips the release after activity that allocated
	// less than this since the last one (a health check, a version call):
	// two GCs would find next to nothing to give back.
	releaseMinAlloc = 1 << 20
)

// memReleaser releases memory after each burst of calls; see above.
type memReleaser struct {
	lastCall atomic.Int64 // unix nanoseconds of the last call's start or end
	pending  atomic.Bool  // a kick is sent and not yet taken by run
	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	sample   []metrics.Sample
	released uint64 // heap bytes allocated at the last release
	// release is freeMemory; tests count calls instead.
	release func()
}

// freeMemory runs two GCs, the second for what the first moved to the
// sync.Pools' victim caches, and returns all free heap pages to the OS.
func freeMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

func newMemReleaser() *memReleaser {
	return &memReleaser{
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		sample:  []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}},
		release: freeMemory,
	}
}

// touch records activity: a call started or ended. It is cheap enough for
// every call.
func (m *memReleaser) touch() {
	m.lastCall.Store(time.Now().UnixNano())
	if !m.pending.Load() && m.pending.CompareAndSwap(false, true) {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// allocated is the total of bytes ever allocated on the heap.
func (m *memReleaser) allocated() uint64 {
	metrics.Read(m.sample)
	if m.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return m.sample[0].Value.Uint64()
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run releases memory after each burst until close.
func (m *memReleaser) run(ctx context.Context) {
	defer close(m.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-m.kick:
		case <-m.stop:
			return
		}
		// Calls from here on kick again, so activity during the wait or
		// the release is not missed; releaseMinAlloc keeps that from
		// costing another GC when it allocated little.
		m.pending.Store(false)
		// Wait for a quiet interval: no call, little allocation, little
		// CPU.
		allocBefore, cpuBefore := m.allocated(), cpuTime()
		for {
			timer.Reset(releaseQuiet)
			select {
			case <-timer.C:
			case <-m.stop:
				return
			}
			alloc, cpu := m.allocated(), cpuTime()
			calm := time.Since(time.Unix(0, m.lastCall.Load())) >= releaseQuiet
			if calm && alloc-allocBefore <= releaseQuietAlloc && cpu-cpuBefore <= releaseQuietCPU {
				break
			}
			allocBefore, cpuBefore = alloc, cpu
		}
		if m.allocated()-m.released >= releaseMinAlloc {
			start := time.Now()
			m.release()
			m.released = m.allocated()
			log.G(ctx).WithField("took", time.Since(start)).Debug("released free memory to the OS")
		}
	}
}

// The interceptors record each call's start and end.

func (m *memReleaser) unary(ctx context.Context, req interface{}, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
	m.touch()
	defer m.touch()
	return handler(ctx, req)
}

func (m *memReleaser) stream(srv interface{}, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	m.touch()
	defer m.touch()
	return handler(srv, ss)
}

func (m *memReleaser) ttrpc(ctx context.Context, unmarshal ttrpc.Unmarshaler, _ *ttrpc.UnaryServerInfo, method ttrpc.Method) (interface{}, error) {
	m.touch()
	defer m.touch()
	return method(ctx, unmarshal)
}

// close stops the releaser and waits for it.
func (m *memReleaser) close() {
	close(m.stop)
	<-m.done
}
