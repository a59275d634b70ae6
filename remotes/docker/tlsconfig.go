package docker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// TLSFiles names what a client's TLS configuration is made of, as
// containerd's ctr flags --tlscacert, --tlscert, --tlskey and
// --skip-verify give it.
type TLSFiles struct {
	// CAFile holds PEM certificates trusted besides the system's.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key; both
	// or neither.
	CertFile, KeyFile string
	// SkipVerify turns certificate verification off.
	SkipVerify bool
}

// IsZero reports whether f asks for nothing.
func (f TLSFiles) IsZero() bool { return f == TLSFiles{} }

// TLSConfig reads f's files into a TLS configuration for HostOptions.TLS;
// nil when f asks for nothing. A file that cannot be read or holds no
// certificate, or a certificate without its key, is an error naming the
// file.
func (f TLSFiles) TLSConfig() (*tls.Config, error) {
	if f.IsZero() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.SkipVerify} //nolint:gosec // only when asked for
	if f.CAFile != "" {
		b, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("TLS CA file %s holds no PEM certificate: %w", f.CAFile, errdefs.ErrInvalidArgument)
		}
		cfg.RootCAs = pool
	}
	if f.CertFile != "" || f.KeyFile != "" {
		if f.CertFile == "" || f.KeyFile == "" {
			return nil, fmt.Errorf("a TLS client certificate needs both a certificate and a key file (--tlscert and --tlskey): %w", errdefs.ErrInvalidArgument)
		}
		for _, p := range []string{f.CertFile, f.KeyFile} {
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("TLS client certificate: %w", err)
			}
		}
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load TLS client certificate %s with key %s: %v: %w", f.CertFile, f.KeyFile, err, errdefs.ErrInvalidArgument)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
