package metrics

import (
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// RegisterProcess adds the usual process and Go runtime gauges to r:
// resident memory, open file descriptors, start time, goroutines, threads
// and heap in use. Values are read from /proc/self at scrape time.
func RegisterProcess(r *Registry) {
	start := float64(time.Now().UnixNano()) / 1e9
	r.NewGaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes.", func() float64 {
		return float64(ResidentBytes(os.Getpid()))
	})
	r.NewGaugeFunc("process_open_fds", "Open file descriptors.", func() float64 {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return math.NaN()
		}
		return float64(len(ents))
	})
	r.NewGaugeFunc("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.", func() float64 {
		return start
	})
	r.NewGaugeFunc("go_goroutines", "Goroutines that currently exist.", func() float64 {
		return float64(runtime.NumGoroutine())
	})
	r.NewGaugeFunc("go_threads", "OS threads created.", func() float64 {
		n, _ := runtime.ThreadCreateProfile(nil)
		return float64(n)
	})
	r.NewGaugeFunc("go_memstats_heap_inuse_bytes", "Heap bytes in use.", func() float64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapInuse)
	})
}

// ResidentBytes is a process's resident set size from /proc/PID/statm, or
// 0 when it cannot be read (the process is gone).
func ResidentBytes(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
