package docker

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/remotes"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, all as PEM files in a temp directory.
type testPKI struct {
	dir                           string
	caFile, clientCert, clientKey string
	serverCert                    tls.Certificate
	pool                          *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), pool: x509.NewCertPool()}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.pool.AddCert(ca)
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", caDER)
	issue := func(serial int64, server bool) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "client"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if server {
			tmpl.Subject.CommonName = "127.0.0.1"
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	der, key := issue(2, true)
	p.serverCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	der, key = issue(3, false)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	p.clientCert = p.write(t, "client.pem", "CERTIFICATE", der)
	p.clientKey = p.write(t, "client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTLSFilesErrors(t *testing.T) {
	p := newTestPKI(t)
	notPEM := filepath.Join(p.dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	missing := filepath.Join(p.dir, "missing.pem")
	for _, tc := range []struct {
		name    string
		f       TLSFiles
		want    []string
		invalid bool // errdefs.ErrInvalidArgument, else a file error
	}{
		{name: "missing CA", f: TLSFiles{CAFile: missing}, want: []string{"TLS CA file", missing, "no such file"}},
		{name: "CA not PEM", f: TLSFiles{CAFile: notPEM}, want: []string{notPEM, "no PEM certificate"}, invalid: true},
		{name: "cert without key", f: TLSFiles{CertFile: p.clientCert}, want: []string{"--tlscert and --tlskey"}, invalid: true},
		{name: "key without cert", f: TLSFiles{KeyFile: p.clientKey}, want: []string{"--tlscert and --tlskey"}, invalid: true},
		{name: "missing cert", f: TLSFiles{CertFile: missing, KeyFile: p.clientKey}, want: []string{missing, "no such file"}},
		{name: "key does not match", f: TLSFiles{CertFile: p.clientCert, KeyFile: p.caFile}, want: []string{"load TLS client certificate", p.clientCert}, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.f.TLSConfig()
			if err == nil {
				t.Fatalf("no error; config %v", cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.invalid != errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %q: invalid argument %v, want %v", err, !tc.invalid, tc.invalid)
			}
		})
	}
	if cfg, err := (TLSFiles{}).TLSConfig(); cfg != nil || err != nil {
		t.Fatalf("nothing asked: %v, %v", cfg, err)
	}
	cfg, err := TLSFiles{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey, SkipVerify: true}.TLSConfig()
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || !cfg.InsecureSkipVerify {
		t.Fatalf("config %+v, %v", cfg, err)
	}
}

// HostOptions.TLS reaches a registry that wants our CA and a client
// certificate, alone or with a hosts directory's settings added.
func TestHostOptionsTLS(t *testing.T) {
	p := newTestPKI(t)
	reg := newFakeRegistry(t)
	m, _, _ := reg.addImage("x", "latest", []byte("layer"))
	srv := httptest.NewUnstartedServer(reg)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.serverCert}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, host), 0o755)
	hosts := func(extra string) {
		os.WriteFile(filepath.Join(dir, host, "hosts.toml"), []byte(`server = "https://`+host+`"`+"\n"+extra), 0o644)
	}
	// The hosts directory's own CA is the test CA too, in another file.
	caCopy := filepath.Join(dir, host, "ca.crt")
	b, _ := os.ReadFile(p.caFile)
	os.WriteFile(caCopy, b, 0o644)

	for _, tc := range []struct {
		name    string
		files   TLSFiles
		hosts   string
		wantErr string
	}{
		{name: "CA and client certificate", files: TLSFiles{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}},
		{name: "no CA", files: TLSFiles{CertFile: p.clientCert, KeyFile: p.clientKey}, wantErr: "certificate"},
		{name: "no client certificate", files: TLSFiles{CAFile: p.caFile}, wantErr: "certificate"},
		{name: "skip verify", files: TLSFiles{SkipVerify: true, CertFile: p.clientCert, KeyFile: p.clientKey}},
		{name: "hosts dir CA with our client certificate", files: TLSFiles{CertFile: p.clientCert, KeyFile: p.clientKey}, hosts: "ca = \"ca.crt\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts(tc.hosts)
			cfg, err := tc.files.TLSConfig()
			if err != nil {
				t.Fatal(err)
			}
			r := NewResolver(Options{Hosts: ConfigureHosts(HostOptions{HostDir: dir, TLS: cfg}), Retry: RetryPolicy{Attempts: 1}})
			_, desc, err := r.Resolve(context.Background(), host+"/x:latest")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != m.Digest {
				t.Fatal("wrong manifest")
			}
		})
	}
}

func TestDumpAndTraceTransport(t *testing.T) {
	reg := newFakeRegistry(t)
	_, _, l := reg.addImage("team/app", "latest", []byte("layer data"))
	reg.auth = "bearer"
	var dump, trace bytes.Buffer
	hosts := ConfigureHosts(HostOptions{WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		return DumpTransport(TraceTransport(rt, &trace), &dump)
	}})
	r := NewResolver(Options{Hosts: hosts, Retry: fastRetry})
	ctx := context.Background()
	ref := reg.host() + "/team/app:latest"
	if _, _, err := r.Resolve(ctx, ref); err != nil {
		t.Fatal(err)
	}
	f, _ := r.Fetcher(ctx, ref)
	if _, err := readAll(t, f, l); err != nil {
		t.Fatal(err)
	}
	out := dump.String()
	for _, w := range []string{
		"> HEAD http://" + reg.host() + "/v2/team/app/manifests/latest\n",
		"> Host: " + reg.host() + "\n",
		"> User-Agent: berth/1\n",
		"< HTTP/1.1 401 Unauthorized\n",
		"< Www-Authenticate: Bearer realm=",
		"> GET http://" + reg.host() + "/token\n",
		"> Authorization: Bearer <redacted>\n",
		"< HTTP/1.1 200 OK\n",
		"< Docker-Content-Digest: sha256:",
		"> GET http://" + reg.host() + "/v2/team/app/blobs/" + l.Digest.String(),
	} {
		if !strings.Contains(out, w) {
			t.Errorf("dump lacks %q", w)
		}
	}
	if strings.Contains(out, "layer data") {
		t.Error("dump holds a body")
	}
	if t.Failed() {
		t.Logf("dump:\n%s", out)
	}
	tr := trace.String()
	for _, w := range []string{"http-trace: HEAD http://" + reg.host(), "connecting to tcp " + reg.host(), "connected to tcp", "got connection to", "reused true"} {
		if !strings.Contains(tr, w) {
			t.Errorf("trace lacks %q:\n%s", w, tr)
		}
	}
}

// A secret without a user is a refresh token, traded by POST.
func TestRefreshToken(t *testing.T) {
	for _, tc := range []struct {
		name, token, wantErr string
	}{
		{name: "good", token: "r3fresh"},
		{name: "rejected", token: "stale", wantErr: "refresh token rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFakeRegistry(t)
			reg.addImage("team/app", "latest", []byte("layer"))
			reg.auth, reg.refresh = "bearer", "r3fresh"
			r := newTestResolver(func(string) (string, string, error) { return "", tc.token, nil })
			_, _, err := r.Resolve(context.Background(), reg.host()+"/team/app:latest")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, remotes.ErrUnauthorized) {
					t.Fatalf("got %v, want unauthorized saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := reg.count("POST /token"); n != 1 {
				t.Fatalf("%d token POSTs:\n%s", n, strings.Join(reg.log(), "\n"))
			}
		})
	}
}
