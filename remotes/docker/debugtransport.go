package docker

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sort"
	"strings"
	"sync"
	"time"
)

// DumpTransport wraps rt to write each request's and response's start
// line and headers to w (containerd's ctr --http-dump). Bodies are not
// written: they are blobs. Authorization values are shortened to their
// scheme, so a dump can be shared.
func DumpTransport(rt http.RoundTripper, w io.Writer) http.RoundTripper {
	return &dumpTransport{rt: rt, w: &lockedWriter{w: w}}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

type dumpTransport struct {
	rt http.RoundTripper
	w  io.Writer
}

func (t *dumpTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "> %s %s\n", req.Method, redactURL(req.URL))
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	fmt.Fprintf(&b, "> Host: %s\n", host)
	writeHeaders(&b, "> ", req.Header)
	b.WriteString(">\n")
	io.WriteString(t.w, b.String())

	resp, err := t.rt.RoundTrip(req)
	b.Reset()
	if err != nil {
		fmt.Fprintf(&b, "< %s %s: %v\n<\n", req.Method, redactURL(req.URL), err)
		io.WriteString(t.w, b.String())
		return nil, err
	}
	fmt.Fprintf(&b, "< %s %s\n", resp.Proto, resp.Status)
	writeHeaders(&b, "< ", resp.Header)
	b.WriteString("<\n")
	io.WriteString(t.w, b.String())
	return resp, nil
}

func writeHeaders(b *strings.Builder, prefix string, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			if strings.EqualFold(k, "Authorization") || strings.EqualFold(k, "Proxy-Authorization") {
				scheme, _, _ := strings.Cut(v, " ")
				v = scheme + " <redacted>"
			}
			fmt.Fprintf(b, "%s%s: %s\n", prefix, k, v)
		}
	}
}

// TraceTransport wraps rt to write a request's connection events (DNS
// lookup, connect, TLS handshake, connection got or reused) to w
// (containerd's ctr --http-trace).
func TraceTransport(rt http.RoundTripper, w io.Writer) http.RoundTripper {
	return &traceTransport{rt: rt, w: &lockedWriter{w: w}}
}

type traceTransport struct {
	rt http.RoundTripper
	w  io.Writer
}

func (t *traceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	target := req.Method + " " + redactURL(req.URL)
	logf := func(format string, args ...any) {
		fmt.Fprintf(t.w, "http-trace: %s: %s\n", target, fmt.Sprintf(format, args...))
	}
	var start time.Time
	trace := &httptrace.ClientTrace{
		DNSStart: func(i httptrace.DNSStartInfo) { logf("DNS lookup %s", i.Host) },
		DNSDone: func(i httptrace.DNSDoneInfo) {
			if i.Err != nil {
				logf("DNS lookup failed: %v", i.Err)
				return
			}
			addrs := make([]string, 0, len(i.Addrs))
			for _, a := range i.Addrs {
				addrs = append(addrs, a.String())
			}
			logf("DNS lookup done: %s", strings.Join(addrs, ", "))
		},
		ConnectStart: func(network, addr string) { start = time.Now(); logf("connecting to %s %s", network, addr) },
		ConnectDone: func(network, addr string, err error) {
			if err != nil {
				logf("connect to %s %s failed: %v", network, addr, err)
				return
			}
			logf("connected to %s %s in %v", network, addr, time.Since(start).Round(time.Microsecond))
		},
		TLSHandshakeDone: func(s tls.ConnectionState, err error) {
			if err != nil {
				logf("TLS handshake failed: %v", err)
				return
			}
			logf("TLS handshake done: %s, server name %q", tls.VersionName(s.Version), s.ServerName)
		},
		GotConn: func(i httptrace.GotConnInfo) {
			logf("got connection to %s (reused %v, idle %v)", i.Conn.RemoteAddr(), i.Reused, i.IdleTime.Round(time.Millisecond))
		},
	}
	return t.rt.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
}
