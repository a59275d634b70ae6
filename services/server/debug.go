package server

import (
	"expvar"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/berth-containers/berth/pkg/metrics"
)

// newDebugServer serves pprof, expvar and the Prometheus metrics
// (/v1/metrics) on the debug socket. It is a separate socket (and off by
// default) so profiling access is granted apart from API access.
func newDebugServer() *http.Server {
	dh := &debugMetrics{}
	mux := http.NewServeMux()
	mux.Handle("/v1/metrics", dh)
	mux.Handle("/debug/vars", expvar.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	offerDebug(dh)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

func serveDebug(srv *http.Server, l net.Listener) error {
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

// debugMetrics serves the default registry and, once the metrics plugin
// has bound it, the server's own gauges (tasks, shims, storage).
type debugMetrics struct {
	mu     sync.RWMutex
	server *serverMetrics
}

func (d *debugMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	regs := []*metrics.Registry{metrics.Default}
	d.mu.RLock()
	if d.server != nil {
		regs = append(regs, d.server.Registry())
	}
	d.mu.RUnlock()
	metrics.Handler(regs...).ServeHTTP(w, r)
}

// The debug server is created in New before the plugins load, and the
// metrics plugin (which requires every other plugin, so it loads last in
// the same New) is the one place that sees the plugin set. New offers its
// debug handler here and the plugin takes it: one slot, overwritten by each
// New, so a New that failed half-way leaves nothing for the next one.
var (
	pendingMu    sync.Mutex
	pendingDebug *debugMetrics
)

func offerDebug(d *debugMetrics) {
	pendingMu.Lock()
	pendingDebug = d
	pendingMu.Unlock()
}

// bindDebug gives the debug handler offered by the running New, if any,
// the server's metrics.
func bindDebug(m *serverMetrics) {
	pendingMu.Lock()
	d := pendingDebug
	pendingDebug = nil
	pendingMu.Unlock()
	if d == nil {
		return
	}
	d.mu.Lock()
	d.server = m
	d.mu.Unlock()
}
