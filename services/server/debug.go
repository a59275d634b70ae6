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
func newDebugServer() (*http.Server, *debugMetrics) {
	dh := &debugMetrics{}
	mux := http.NewServeMux()
	mux.Handle("/v1/metrics", dh)
	mux.Handle("/debug/vars", expvar.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, dh
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

// bind gives the handler the server's own gauges once its plugins are loaded.
func (d *debugMetrics) bind(m *serverMetrics) {
	d.mu.Lock()
	d.server = m
	d.mu.Unlock()
}
