package server

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/metrics"
	"github.com/berth-containers/berth/pkg/version"
	"github.com/berth-containers/berth/plugin"
	"github.com/berth-containers/berth/snapshots"
)

// Process-wide request metrics, in the default registry: the interceptors
// record every call, whichever server instance served it.
var (
	grpcHandled = metrics.Default.NewCounter("berth_grpc_server_handled_total",
		"gRPC calls completed, by full method and status code.", "method", "code")
	grpcSeconds = metrics.Default.NewHistogram("berth_grpc_server_handling_seconds",
		"gRPC call latency, by full method.", nil, "method")
	grpcInFlight = metrics.Default.NewGauge("berth_grpc_server_in_flight",
		"gRPC calls being handled now, long-lived streams (event subscriptions) included.")
	ttrpcHandled = metrics.Default.NewCounter("berth_ttrpc_server_handled_total",
		"ttrpc calls (from shims) completed, by full method and status code.", "method", "code")
	taskSeconds = metrics.Default.NewHistogram("berth_task_operation_seconds",
		"Latency of successful task creates, starts and deletes (op), as the tasks service saw them.",
		[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "op")
)

// taskOps maps the tasks service's methods whose latency is tracked
// separately to their op label.
var taskOps = map[string]string{
	"/containerd.services.tasks.v1.Tasks/Create": "create",
	"/containerd.services.tasks.v1.Tasks/Start":  "start",
	"/containerd.services.tasks.v1.Tasks/Delete": "delete",
}

func init() {
	metrics.RegisterProcess(metrics.Default)
	metrics.Default.NewFunc("berth_build_info", "Berth's version and revision; the value is always 1.",
		metrics.GaugeType, []string{"version", "revision"}, func(emit metrics.EmitFunc) {
			emit(1, version.Version, version.Revision)
		})
	for _, op := range taskOps {
		taskSeconds.With(op)
	}
}

// observeCall records one finished gRPC call; err already carries its
// gRPC status.
func observeCall(method string, start time.Time, err error) {
	took := time.Since(start).Seconds()
	grpcHandled.With(method, status.Code(err).String()).Inc()
	grpcSeconds.With(method).Observe(took)
	if op, ok := taskOps[method]; ok && status.Code(err) == codes.OK {
		taskSeconds.With(op).Observe(took)
	}
}

// Bounds of the storage walk done at scrape time.
const (
	storageScanTTL     = 10 * time.Second // results are reused this long
	storageScanTimeout = 2 * time.Second
	storageScanLimit   = 200000 // objects visited per walk, all stores together
)

// serverMetrics is one server's gauges, computed at scrape time from its
// plugins: tasks, shims, snapshots and content.
type serverMetrics struct {
	reg     *metrics.Registry
	plugins *plugin.Set
	address string // the gRPC socket shims were started with

	mu        sync.Mutex
	scannedAt time.Time
	scan      storageScan
}

type storageScan struct {
	snapshots    map[string]int // by snapshotter
	blobs        int
	contentBytes int64
	truncated    bool
	took         time.Duration
}

func newServerMetrics(set *plugin.Set, address string) *serverMetrics {
	m := &serverMetrics{reg: metrics.NewRegistry(), plugins: set, address: address}
	m.reg.NewGaugeFunc("berth_tasks_running", "Live tasks (created and not yet exited and deleted) in all namespaces.", m.tasks)
	m.reg.NewFunc("berth_shims", "Shim processes serving this daemon, and their resident memory in bytes (what=count|rss_bytes); spare shims started ahead of need and waiting for a task (what=spares, not in the others).",
		metrics.GaugeType, []string{"what"}, func(emit metrics.EmitFunc) {
			n, rss, spares := shimProcesses(m.address)
			emit(float64(n), "count")
			emit(float64(rss), "rss_bytes")
			emit(float64(spares), "spares")
		})
	m.reg.NewFunc("berth_snapshots", "Snapshots in each snapshotter backend, all namespaces.",
		metrics.GaugeType, []string{"snapshotter"}, func(emit metrics.EmitFunc) {
			s := m.storage()
			for name, n := range s.snapshots {
				emit(float64(n), name)
			}
		})
	m.reg.NewGaugeFunc("berth_content_blobs", "Committed blobs in the content store.", func() float64 {
		return float64(m.storage().blobs)
	})
	m.reg.NewGaugeFunc("berth_content_bytes", "Bytes of committed blobs in the content store.", func() float64 {
		return float64(m.storage().contentBytes)
	})
	m.reg.NewGaugeFunc("berth_storage_scan_truncated", "1 when the last snapshot and content walk stopped at its time or size bound, so the storage gauges are lower bounds.", func() float64 {
		if m.storage().truncated {
			return 1
		}
		return 0
	})
	m.reg.NewGaugeFunc("berth_storage_scan_seconds", "How long the last snapshot and content walk took.", func() float64 {
		return m.storage().took.Seconds()
	})
	m.reg.NewFunc("berth_plugins", "Plugins by status (ok, skipped, error).", metrics.GaugeType, []string{"status"}, func(emit metrics.EmitFunc) {
		counts := map[string]int{"ok": 0, "skipped": 0, "error": 0}
		for _, p := range set.All() {
			switch {
			case p.Err() == nil:
				counts["ok"]++
			case p.Skipped():
				counts["skipped"]++
			default:
				counts["error"]++
			}
		}
		for _, st := range []string{"ok", "skipped", "error"} {
			emit(float64(counts[st]), st)
		}
	})
	return m
}

// Registry is the server's own metrics, to be served beside the default
// registry.
func (m *serverMetrics) Registry() *metrics.Registry { return m.reg }

func (m *serverMetrics) tasks() float64 {
	inst, err := m.plugins.GetByID(plugin.RuntimePluginV2, "task")
	if err != nil {
		return 0
	}
	if c, ok := inst.(interface{ Count() int }); ok {
		return float64(c.Count())
	}
	return 0
}

// errScanLimit stops a walk at storageScanLimit objects.
var errScanLimit = errors.New("scan limit reached")

// storage walks the snapshotter and content backends, at most once per
// storageScanTTL and within storageScanTimeout and storageScanLimit, so a
// scrape never costs more than a bounded walk however big the node is.
func (m *serverMetrics) storage() storageScan {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.scannedAt.IsZero() && time.Since(m.scannedAt) < storageScanTTL {
		return m.scan
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), storageScanTimeout)
	defer cancel()
	s := storageScan{snapshots: map[string]int{}}
	budget := storageScanLimit
	stopped := func(err error) {
		if err != nil && (errors.Is(err, errScanLimit) || ctx.Err() != nil) {
			s.truncated = true
		}
	}
	if sns, err := m.plugins.GetByType(plugin.SnapshotPlugin); err == nil {
		for name, inst := range sns {
			sn, ok := inst.(snapshots.Snapshotter)
			if !ok {
				continue
			}
			n := 0
			stopped(sn.Walk(ctx, func(context.Context, snapshots.Info) error {
				if budget <= 0 {
					return errScanLimit
				}
				budget--
				n++
				return nil
			}))
			s.snapshots[name] = n
		}
	}
	if inst, err := m.plugins.GetByID(plugin.ContentPlugin, "content"); err == nil {
		if cs, ok := inst.(content.Manager); ok {
			stopped(cs.Walk(ctx, func(info content.Info) error {
				if budget <= 0 {
					return errScanLimit
				}
				budget--
				s.blobs++
				s.contentBytes += info.Size
				return nil
			}))
		}
	}
	s.took = time.Since(start)
	m.scan, m.scannedAt = s, time.Now()
	return s
}

// shimProcesses finds the shim processes started for the daemon listening
// on address: processes named containerd-shim-* whose command line carries
// "-address <address>", leaving out the short-lived "start" and "delete"
// invocations. It returns their number and total resident memory.
func shimProcesses(address string) (n int, rss int64, spares int) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
		if !isShimFor(argv, address) {
			continue
		}
		// A spare still waiting for its task has not left "/" for a
		// bundle.
		if slices.Contains(argv, "-spare") {
			if cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); cwd == "/" {
				spares++
				continue
			}
		}
		n++
		rss += metrics.ResidentBytes(pid)
	}
	return n, rss, spares
}

func isShimFor(argv []string, address string) bool {
	if len(argv) == 0 || !strings.HasPrefix(filepath.Base(argv[0]), "containerd-shim-") {
		return false
	}
	switch argv[len(argv)-1] {
	case "start", "delete":
		return false
	}
	for i := 0; i+1 < len(argv); i++ {
		if (argv[i] == "-address" || argv[i] == "--address") && argv[i+1] == address {
			return true
		}
	}
	return false
}
