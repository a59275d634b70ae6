package server

import (
	"expvar"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// newDebugServer serves pprof and expvar on the debug socket. It is a
// separate socket (and off by default) so profiling access is granted apart
// from API access.
func newDebugServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/debug/vars", expvar.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

func serveDebug(srv *http.Server, l net.Listener) error {
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
