package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The registry flags containerd 1.6's ctr has: --tlscacert, --tlscert,
// --tlskey, --http-dump, --http-trace (and pull's --print-chainid),
// against docker-registry over TLS with a CA made here. The registry is
// on loopback, so a hosts directory says https (a [host] table: the
// form containerd 1.6's ctr reads), with no TLS settings of its own.
func TestRegistryFlags(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	reg := startRegistry(t, registryOpts{tls: true})
	d := newDaemon(t, "")
	ref := reg.Host + "/flags/busybox:v1"
	d.ctr("images", "import", "--no-unpack", testImageArchive(t, ref, 0))
	hostsDir := t.TempDir()
	os.MkdirAll(filepath.Join(hostsDir, reg.Host), 0o755)
	if err := os.WriteFile(filepath.Join(hostsDir, reg.Host, "hosts.toml"), []byte(fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n", "https://"+reg.Host)), 0o644); err != nil {
		t.Fatal(err)
	}
	hd := []string{"--hosts-dir", hostsDir}
	ca := append([]string{"--tlscacert", reg.CAFile}, hd...)
	// The subtests pull what this pushes, so each also runs alone.
	d.ctr(append(append([]string{"images", "push"}, ca...), ref)...)

	t.Run("tlscacert", func(t *testing.T) {
		out, err := d.ctrErr(append(append([]string{"images", "push"}, hd...), ref)...)
		mustFail(t, out, err, "certificate")
		d.ctr(append(append([]string{"images", "push"}, ca...), ref)...)
		out, err = d.ctrErr(append(append([]string{"-n", "noca", "images", "pull"}, hd...), ref)...)
		mustFail(t, out, err, "certificate")
		d.ctr(append(append([]string{"-n", "ca", "content", "fetch"}, ca...), ref)...)
		imageDigest(t, d.ctr("-n", "ca", "images", "ls"), ref)
	})
	t.Run("print-chainid matches containerd's ctr", func(t *testing.T) {
		chainRE := regexp.MustCompile(`image chain ID: (sha256:[0-9a-f]{64})`)
		out := d.ctr(append(append([]string{"-n", "chain", "images", "pull", "--print-chainid"}, ca...), ref)...)
		ours := chainRE.FindStringSubmatch(out)
		if ours == nil {
			t.Fatalf("no chain ID:\n%s", out)
		}
		if !strings.Contains(d.ctr("-n", "chain", "snapshots", "ls"), ours[1]) {
			t.Fatalf("chain ID %s is not a snapshot", ours[1])
		}
		out = d.dctr(append(append([]string{"-n", "debchain", "images", "pull", "--print-chainid"}, ca...), ref)...)
		theirs := chainRE.FindStringSubmatch(out)
		if theirs == nil || theirs[1] != ours[1] {
			t.Fatalf("containerd's ctr printed %v, ours %s:\n%s", theirs, ours[1], out)
		}
		// Without the flag, no chain ID.
		if out := d.ctr(append(append([]string{"-n", "nochain", "images", "pull"}, ca...), ref)...); chainRE.MatchString(out) {
			t.Fatalf("chain ID printed unasked:\n%s", out)
		}
	})
	t.Run("http-dump and http-trace on stderr", func(t *testing.T) {
		out, stderr, err := ctrSplit(t, filepath.Join(binDir, "ctr"), d.Address, "", append(append([]string{"-n", "dump", "images", "pull", "--http-dump", "--http-trace"}, ca...), ref)...)
		stdout := string(out)
		if err != nil {
			t.Fatalf("%v\n%s%s", err, stdout, stderr)
		}
		mustContain(t, stderr,
			"> GET https://"+reg.Host+"/v2/flags/busybox/manifests/v1\n",
			"> User-Agent: berth-ctr/",
			"< HTTP/2.0 200 OK\n",
			"< Docker-Content-Digest: sha256:",
			"/v2/flags/busybox/blobs/sha256:",
			"http-trace: ", "connecting to tcp "+reg.Host, "TLS handshake done: TLS 1.", "got connection to "+reg.Host)
		if strings.Contains(stdout, "> GET") || strings.Contains(stdout, "http-trace:") {
			t.Fatalf("dump on stdout:\n%s", stdout)
		}
		mustContain(t, stdout, "unpacking linux/")
	})
	t.Run("bad files fail clearly", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope.pem")
		notPEM := filepath.Join(t.TempDir(), "not.pem")
		os.WriteFile(notPEM, []byte("not a certificate"), 0o644)
		for _, tc := range []struct {
			args  []string
			wants []string
		}{
			{[]string{"images", "pull", "--tlscacert", missing}, []string{"TLS CA file", missing, "no such file"}},
			{[]string{"images", "push", "--tlscacert", notPEM}, []string{notPEM, "no PEM certificate"}},
			{[]string{"content", "fetch", "--tlscert", reg.CAFile}, []string{"--tlscert and --tlskey"}},
			{[]string{"images", "pull", "--tlskey", reg.CAFile}, []string{"--tlscert and --tlskey"}},
			{[]string{"images", "pull", "--tlscert", missing, "--tlskey", reg.CAFile}, []string{missing, "no such file"}},
			{[]string{"content", "fetch-object", "--tlscert", reg.CAFile, "--tlskey", reg.CAFile}, []string{"load TLS client certificate", reg.CAFile}},
		} {
			// --user without a password would prompt: the files are checked first.
			out, err := d.ctrErr(append(append(tc.args, "--user", "someone"), ref)...)
			mustFail(t, out, err, tc.wants...)
		}
	})
	t.Run("client certificate", func(t *testing.T) {
		cert, key := requireClientCerts(t, reg)
		out, err := d.ctrErr(append(append([]string{"-n", "nocert", "images", "pull"}, ca...), ref)...)
		// Under TLS 1.3 the server checks the client's certificate
		// after the client's handshake is done, so what the client
		// sees varies (the server's alert, a closed connection, an
		// http2 connection that could not be established). That it
		// failed for want of a certificate is what the registry says.
		if err == nil {
			t.Fatalf("pull without a client certificate succeeded:\n%s", out)
		}
		const refused = "client didn't provide a certificate"
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(reg.logs.String(), refused) {
			if time.Now().After(deadline) {
				t.Fatalf("pull failed, but the registry did not log %q; ctr said:\n%s", refused, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
		withCert := append([]string{"--tlscert", cert, "--tlskey", key}, ca...)
		d.ctr(append(append([]string{"-n", "cert", "images", "pull"}, withCert...), ref)...)
		imageDigest(t, d.ctr("-n", "cert", "images", "ls"), ref)
		pushed := reg.Host + "/flags/pushed:v1"
		d.ctr("-n", "cert", "images", "tag", ref, pushed)
		d.ctr(append(append([]string{"-n", "cert", "images", "push"}, withCert...), pushed)...)
		// containerd's ctr, same flags, reads what we pushed.
		d.dctr(append(append([]string{"-n", "debcert", "content", "fetch"}, withCert...), pushed)...)
		imageDigest(t, d.dctr("-n", "debcert", "images", "ls"), pushed)
	})
}

// requireClientCerts restarts reg (a TLS one) requiring client
// certificates signed by a CA made here (docker-registry's
// http.tls.clientcas) and returns a client certificate and key.
func requireClientCerts(t *testing.T, reg *testRegistry) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth client CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "berth client"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	caFile := filepath.Join(dir, "client-ca.pem")
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	confFile := filepath.Join(reg.dir, "config.yml")
	conf, err := os.ReadFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	keyLine := regexp.MustCompile(`(?m)^    key: .*\n`)
	if !keyLine.Match(conf) {
		t.Fatalf("no TLS key in registry config:\n%s", conf)
	}
	conf = keyLine.ReplaceAllFunc(conf, func(l []byte) []byte {
		return append(l, []byte(fmt.Sprintf("    clientcas:\n      - %s\n", caFile))...)
	})
	if err := os.WriteFile(confFile, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	reg.stop()
	reg.serve(t, confFile)

	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}, //nolint:gosec // readiness probe
	}}}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-reg.exited:
			t.Fatalf("docker-registry exited:\n%s", reg.logs.String())
		default:
		}
		if resp, err := c.Get("https://" + reg.Host + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry with client CAs not ready:\n%s", reg.logs.String())
		}
	}
	// Without a client certificate the handshake fails.
	c.Transport.(*http.Transport).TLSClientConfig.Certificates = nil
	c.Transport.(*http.Transport).CloseIdleConnections()
	if resp, err := c.Get("https://" + reg.Host + "/v2/"); err == nil {
		resp.Body.Close()
		t.Fatalf("registry answered %s without a client certificate", resp.Status)
	}
	return certFile, keyFile
}
