package docker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// HostCapabilities say what a host may be used for.
type HostCapabilities uint8

const (
	// CapabilityPull: blobs and manifests may be fetched by digest.
	CapabilityPull HostCapabilities = 1 << iota
	// CapabilityResolve: tags may be resolved to digests (a mirror that
	// lags behind its upstream should not have it).
	CapabilityResolve
	// CapabilityPush: content may be pushed.
	CapabilityPush

	// CapabilitiesAll is what a registry's own host has.
	CapabilitiesAll = CapabilityPull | CapabilityResolve | CapabilityPush
)

// Has reports whether c includes all of t.
func (c HostCapabilities) Has(t HostCapabilities) bool { return c&t == t }

func (c HostCapabilities) String() string {
	var s []string
	for _, n := range []struct {
		c    HostCapabilities
		name string
	}{{CapabilityPull, "pull"}, {CapabilityResolve, "resolve"}, {CapabilityPush, "push"}} {
		if c.Has(n.c) {
			s = append(s, n.name)
		}
	}
	return strings.Join(s, ",")
}

// RegistryHost is one place a repository's content can be reached: the
// registry itself or a mirror.
type RegistryHost struct {
	// Client sends the requests; its transport carries the host's TLS set-up.
	Client *http.Client
	// Scheme is "https" or "http".
	Scheme string
	// Host is host[:port].
	Host string
	// Path is the API root, "/v2" unless configured otherwise.
	Path string
	// Capabilities say what this host is used for.
	Capabilities HostCapabilities
	// Header is added to every request to this host.
	Header http.Header
}

// url is the address of path below the host's API root.
func (h RegistryHost) url(path string) string {
	return h.Scheme + "://" + h.Host + h.Path + path
}

// HostsFunc returns the hosts to try, in order, for a registry domain
// ("docker.io", "localhost:5000").
type HostsFunc func(domain string) ([]RegistryHost, error)

// HostOptions configures ConfigureHosts.
type HostOptions struct {
	// HostDir is a directory like containerd's certs.d: for each
	// registry domain a folder holding hosts.toml (see hostsfile.go),
	// or, Docker style, CA certificates (*.crt) and client pairs
	// (*.cert with *.key). "_default" applies to domains without a folder.
	HostDir string
	// PlainHTTP makes the registry's own host use http. Hosts on
	// localhost, 127.0.0.0/8 and ::1 use http whatever it says.
	PlainHTTP bool
	// Header is added to every request.
	Header http.Header
	// Client, if set, is used for hosts without TLS settings of their own
	// (tests give theirs here).
	Client *http.Client
	// TLS, if set, is the TLS configuration of every host (a CA, a client
	// certificate, skipping verification): hosts without TLS settings of
	// their own use it as is, and a hosts directory's settings are added
	// to a copy of it. (Client, when set, still serves the hosts without
	// TLS settings of their own.)
	TLS *tls.Config
	// WrapTransport, if set, wraps every host's transport (to dump or
	// trace requests).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// DockerHubHost is where docker.io's API lives.
const DockerHubHost = "registry-1.docker.io"

// ConfigureHosts returns a HostsFunc: the mirrors a domain's hosts.toml
// lists, in file order, then its server (the domain itself unless the
// file says otherwise).
func ConfigureHosts(opts HostOptions) HostsFunc {
	// One base client for all domains, so connections are shared.
	base := opts.Client
	if base == nil && opts.TLS != nil {
		base = &http.Client{Transport: NewTransport(opts.TLS.Clone())}
	}
	if base == nil {
		base = defaultClient
	}
	base = wrapClient(base, opts.WrapTransport)
	return func(domain string) ([]RegistryHost, error) {
		if domain == "" {
			return nil, fmt.Errorf("registry host is empty: %w", errdefs.ErrInvalidArgument)
		}
		server := RegistryHost{
			Scheme:       "https",
			Host:         domain,
			Path:         "/v2",
			Capabilities: CapabilitiesAll,
		}
		if domain == "docker.io" {
			server.Host = DockerHubHost
		}
		if opts.PlainHTTP || IsLocalhost(server.Host) {
			server.Scheme = "http"
		}
		var (
			hosts []hostConfig
			dir   string
			err   error
		)
		if opts.HostDir != "" {
			dir, err = hostDirectory(opts.HostDir, domain)
			if err != nil {
				return nil, err
			}
		}
		if dir != "" {
			hosts, err = loadHostDir(dir)
			if err != nil {
				return nil, err
			}
		}
		// The last entry is the server; fill in what the file left out.
		if len(hosts) == 0 || !hosts[len(hosts)-1].server {
			hosts = append(hosts, hostConfig{server: true})
		}
		out := make([]RegistryHost, 0, len(hosts))
		for _, hc := range hosts {
			h := server
			if hc.scheme != "" {
				h.Scheme, h.Host, h.Path = hc.scheme, hc.host, hc.path
				if !hc.server {
					h.Capabilities = CapabilityPull | CapabilityResolve
				}
			}
			if hc.capabilities != 0 {
				h.Capabilities = hc.capabilities
			}
			h.Header = mergeHeaders(opts.Header, hc.header)
			client, err := hostClient(base, opts.TLS, hc)
			if err != nil {
				return nil, fmt.Errorf("hosts for %s: %s: %w", domain, h.Host, err)
			}
			if client != base {
				client = wrapClient(client, opts.WrapTransport)
			}
			h.Client = client
			out = append(out, h)
		}
		return out, nil
	}
}

// IsLocalhost reports whether host (with or without port) is this machine.
func IsLocalhost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func mergeHeaders(a, b http.Header) http.Header {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	h := http.Header{}
	for k, v := range a {
		h[k] = append([]string(nil), v...)
	}
	for k, v := range b {
		h[k] = append([]string(nil), v...)
	}
	return h
}

// hostDirectory is the folder configuring domain, or "" if none does.
func hostDirectory(root, domain string) (string, error) {
	candidates := []string{domain}
	if strings.Contains(domain, ":") {
		// host:port spelled for file systems that dislike ':'.
		candidates = append(candidates, strings.ReplaceAll(domain, ":", "_"))
	}
	candidates = append(candidates, "_default")
	for _, c := range candidates {
		if strings.ContainsAny(c, `/\`) || c == "." || c == ".." {
			continue
		}
		p := filepath.Join(root, c)
		fi, err := os.Stat(p)
		if err == nil && fi.IsDir() {
			return p, nil
		}
		if err != nil && !os.IsNotExist(err) {
			return "", fmt.Errorf("hosts dir for %s: %w", domain, err)
		}
	}
	return "", nil
}

// loadHostDir reads dir/hosts.toml, or failing that Docker-style
// certificates in dir, which then apply to the server.
func loadHostDir(dir string) ([]hostConfig, error) {
	p := filepath.Join(dir, "hosts.toml")
	b, err := os.ReadFile(p)
	if err == nil {
		hosts, err := parseHostsFile(dir, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return hosts, nil
	}
	if !os.IsNotExist(err) {
		return nil, fmt.Errorf("read hosts file: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read hosts dir: %w", err)
	}
	hc := hostConfig{server: true}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, ".crt"):
			hc.caCerts = append(hc.caCerts, filepath.Join(dir, n))
		case strings.HasSuffix(n, ".cert"):
			key := strings.TrimSuffix(n, ".cert") + ".key"
			if _, err := os.Stat(filepath.Join(dir, key)); err != nil {
				return nil, fmt.Errorf("client certificate %s has no key %s: %w", filepath.Join(dir, n), key, errdefs.ErrInvalidArgument)
			}
			hc.clientPairs = append(hc.clientPairs, [2]string{filepath.Join(dir, n), filepath.Join(dir, key)})
		}
	}
	return []hostConfig{hc}, nil
}

// wrapClient is c with its transport wrapped by wrap, if any.
func wrapClient(c *http.Client, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	if wrap == nil {
		return c
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	wc := *c
	wc.Transport = wrap(rt)
	return &wc
}

// hostClient is base unless hc has TLS settings; those are added to a
// copy of baseTLS.
func hostClient(base *http.Client, baseTLS *tls.Config, hc hostConfig) (*http.Client, error) {
	if len(hc.caCerts) == 0 && len(hc.clientPairs) == 0 && hc.skipVerify == nil {
		return base, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if baseTLS != nil {
		cfg = baseTLS.Clone()
	}
	if hc.skipVerify != nil {
		cfg.InsecureSkipVerify = *hc.skipVerify
	}
	if len(hc.caCerts) > 0 {
		pool := cfg.RootCAs
		if pool != nil {
			pool = pool.Clone()
		} else if sys, err := x509.SystemCertPool(); err == nil && sys != nil {
			pool = sys
		} else {
			pool = x509.NewCertPool()
		}
		for _, f := range hc.caCerts {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read CA file: %w", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("CA file %s holds no PEM certificate: %w", f, errdefs.ErrInvalidArgument)
			}
		}
		cfg.RootCAs = pool
	}
	for _, pair := range hc.clientPairs {
		cert, err := tls.LoadX509KeyPair(pair[0], pair[1])
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s: %w", pair[0], err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	return &http.Client{Transport: NewTransport(cfg)}, nil
}

// NewTransport is the HTTP transport registries are reached through:
// proxies from the environment, bounded dial and TLS handshake times.
func NewTransport(tlsConfig *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          10,
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: 5 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

var defaultClient = &http.Client{Transport: NewTransport(nil)}

// parseHostURL reads a [host."…"] key: a URL, or a bare host[:port]
// taken as https. The API root is the URL's path with "/v2" added,
// unless overridePath says the path is the root as is.
func parseHostURL(s string, overridePath bool) (scheme, host, path string, err error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", "", fmt.Errorf("host %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "", "", fmt.Errorf("host %q: scheme must be http or https: %w", s, errdefs.ErrInvalidArgument)
	}
	if u.Host == "" {
		return "", "", "", fmt.Errorf("host %q: no host: %w", s, errdefs.ErrInvalidArgument)
	}
	path = strings.TrimSuffix(u.Path, "/")
	if !overridePath && !strings.HasSuffix(path, "/v2") {
		path += "/v2"
	}
	return u.Scheme, u.Host, path, nil
}
