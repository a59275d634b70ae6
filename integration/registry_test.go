package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/platforms"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testRegistry is Debian's docker-registry (distribution 2.8) serving a
// temp directory on a loopback port, stopped when the test ends.
type testRegistry struct {
	Host   string // 127.0.0.1:port
	CAFile string // with TLS: the CA that signed its certificate
	dir    string
	cmd    *exec.Cmd
	logs   *lockedBuffer
	exited chan struct{}
}

type registryOpts struct {
	// user and password, when set, turn on htpasswd (Basic) auth.
	user, password string
	tls            bool
}

func startRegistry(t *testing.T, o registryOpts) *testRegistry {
	t.Helper()
	requireBinary(t, "/usr/bin/docker-registry")
	dir := t.TempDir()
	r := &testRegistry{dir: dir}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n")
	fmt.Fprintf(&cfg, "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n", filepath.Join(dir, "data"))
	if o.user != "" {
		hash := bcryptHash(t, o.password)
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(o.user+":"+hash+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", pw)
	}
	var tlsCfg string
	if o.tls {
		ca, cert, key := writeTestPKI(t, dir)
		r.CAFile = ca
		tlsCfg = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
	}
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		r.Host = "127.0.0.1:" + strconv.Itoa(port)
		conf := cfg.String() + fmt.Sprintf("http:\n  addr: %s\n  secret: berth-integration\n%s", r.Host, tlsCfg)
		confFile := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		r.serve(t, confFile)
		if r.waitReady() {
			break
		}
		r.stop()
		if attempt == 2 {
			t.Fatalf("docker-registry did not start:\n%s", r.logs.String())
		}
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("docker-registry logs:\n%s", r.logs.String())
		}
	})
	return r
}

// waitReady polls /v2/ until the registry answers (200, or 401 with auth).
// serve starts docker-registry with confFile, its output in r.logs.
func (r *testRegistry) serve(t *testing.T, confFile string) {
	t.Helper()
	r.logs = &lockedBuffer{}
	r.cmd = exec.Command("/usr/bin/docker-registry", "serve", confFile)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(r.cmd, r.exited)
}

func (r *testRegistry) waitReady() bool {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	scheme := "http"
	if r.CAFile != "" {
		scheme = "https"
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return false
		default:
		}
		if resp, err := c.Get(scheme + "://" + r.Host + "/v2/"); err == nil {
			resp.Body.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (r *testRegistry) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// bcryptHash hashes password for an htpasswd file. golang.org/x/crypto
// is not among our modules, so the hash comes from the C library's
// crypt(3) (libxcrypt does bcrypt) through perl, which Debian always has.
func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	requireBinary(t, "perl")
	const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	salt := make([]byte, 22)
	rand.Read(salt)
	for i := range salt {
		salt[i] = alphabet[int(salt[i])%len(alphabet)]
	}
	out, err := exec.Command("perl", "-e", "print crypt($ARGV[0], $ARGV[1])", password, "$2b$05$"+string(salt)).Output()
	if err != nil || !bytes.HasPrefix(out, []byte("$2b$05$")) {
		t.Fatalf("bcrypt through perl crypt(): %v: %q", err, out)
	}
	return string(out)
}

// writeTestPKI makes a CA and a certificate for 127.0.0.1 and localhost
// signed by it.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth integration CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// testImageArchive builds a busybox image archive named ref, with
// sizeMB of random data in extra layers.
func testImageArchive(t *testing.T, ref string, sizeMB int) string {
	t.Helper()
	requireBinary(t, "/bin/busybox")
	out := filepath.Join(t.TempDir(), "image.tar")
	args := []string{"-name", ref, "-o", out}
	if sizeMB > 0 {
		args = append(args, "-size-mb", strconv.Itoa(sizeMB), "-random-layers", "2")
	}
	if o, err := runCmd(filepath.Join(binDir, "berth-testimage"), args...); err != nil {
		t.Fatalf("berth-testimage: %v\n%s", err, o)
	}
	return out
}

// ctrStdin runs our ctr with stdin.
func (d *daemon) ctrStdin(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "ctr"), append([]string{"--address", d.Address}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// regProxy sits between client and registry on loopback, records the
// requests, and can break or stall big blob downloads.
type regProxy struct {
	target string
	srv    *httptest.Server

	mu   sync.Mutex
	reqs []string
	// dropTimes big blob GETs are cut off after dropAfter bytes.
	dropAfter int64
	dropTimes int
	// stall, when set, holds the first big blob GET after stallAfter
	// bytes until it is closed or the client gives up.
	stall      chan struct{}
	stallAfter int64
}

// bigBlob is what counts as a big blob: only the random layers.
const bigBlob = 2 << 20

func newRegProxy(t *testing.T, target string) *regProxy {
	p := &regProxy{target: target}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *regProxy) Host() string { return strings.TrimPrefix(p.srv.URL, "http://") }

func (p *regProxy) log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.reqs...)
}

func (p *regProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	entry := r.Method + " " + r.URL.RequestURI()
	if rg := r.Header.Get("Range"); rg != "" {
		entry += " Range:" + rg
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, entry)
	p.mu.Unlock()

	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+p.target+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	out.Host = r.Host // the registry writes upload Locations for this host
	out.ContentLength = r.ContentLength
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)

	big := r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && resp.ContentLength > bigBlob
	p.mu.Lock()
	var cut int64
	var stall chan struct{}
	if big && p.dropTimes > 0 {
		p.dropTimes--
		cut = p.dropAfter
	} else if big && p.stall != nil {
		stall, cut = p.stall, p.stallAfter
		p.stall = nil
	}
	p.mu.Unlock()
	if cut > 0 {
		io.CopyN(w, resp.Body, cut)
		w.(http.Flusher).Flush()
		if stall != nil {
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		}
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	io.Copy(w, resp.Body)
}

// rangeStarts lists the byte offsets of the Range requests in log.
func rangeStarts(log []string) []int64 {
	re := regexp.MustCompile(`Range:bytes=(\d+)-`)
	var out []int64
	for _, l := range log {
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			out = append(out, n)
		}
	}
	return out
}

// Our ctr and Debian's push to and pull from a plain-HTTP registry.
func TestRegistryPushPull(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	reg := startRegistry(t, registryOpts{})
	d := newDaemon(t, "")
	ref := reg.Host + "/test/busybox:v1"
	d.ctr("images", "import", testImageArchive(t, ref, 0))
	local := imageDigest(t, d.ctr("images", "ls"), ref)

	t.Run("push", func(t *testing.T) {
		out := d.ctr("images", "push", ref)
		mustContain(t, out, "layer-sha256:", ": done", "manifest-sha256:", "elapsed:")
		// Again: the blobs are there already.
		mustContain(t, d.ctr("images", "push", ref), "layer-sha256:", ": exists")
	})
	t.Run("push a manifest by digest", func(t *testing.T) {
		// No image of that name here: --manifest names what to push.
		mref := reg.Host + "/test/bymanifest:m1"
		d.ctr("images", "push", "--manifest", local, "--manifest-type", "application/vnd.oci.image.manifest.v1+json", mref)
		d.ctr("-n", "bymanifest", "images", "pull", mref)
		if got := imageDigest(t, d.ctr("-n", "bymanifest", "images", "ls"), mref); got != local {
			t.Fatalf("pulled %s, pushed %s", got, local)
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--manifest", "sha256:nothex"}, "invalid manifest digest"},
			{[]string{"--manifest", local, "--manifest-type", "text/plain"}, "not a manifest or index media type"},
			{[]string{"--manifest", "sha256:" + strings.Repeat("0", 64)}, "not found"},
		} {
			out, err := d.ctrErr(append(append([]string{"images", "push"}, tc.args...), mref)...)
			mustFail(t, out, err, tc.want)
		}
	})
	t.Run("non-distributable layers", func(t *testing.T) {
		in, foreign, _ := foreignLayerArchive(t)
		d.ctr("-n", "foreign", "images", "import", "--no-unpack", in)
		fref := reg.Host + "/test/foreign:f1"
		d.ctr("-n", "foreign", "images", "tag", busyboxRef, fref)
		blobURL := "http://" + reg.Host + "/v2/test/foreign/blobs/" + foreign.String()
		// By default the layer is skipped; this registry then refuses a
		// manifest naming a blob it lacks (a registry that lets clients
		// fetch foreign layers from their URLs would take it).
		out, err := d.ctrErr("-n", "foreign", "images", "push", fref)
		mustFail(t, out, err, "MANIFEST_BLOB_UNKNOWN")
		for _, tc := range []struct {
			flags []string
			want  int
		}{{nil, http.StatusNotFound}, {[]string{"--allow-non-distributable-blobs"}, http.StatusOK}} {
			if len(tc.flags) > 0 {
				d.ctr(append(append([]string{"-n", "foreign", "images", "push"}, tc.flags...), fref)...)
			}
			resp, err := http.Head(blobURL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("push %v: registry answers %d for the foreign layer, want %d", tc.flags, resp.StatusCode, tc.want)
			}
		}
	})
	t.Run("pull into a fresh namespace and run", func(t *testing.T) {
		out := d.ctr("-n", "fresh", "images", "pull", ref)
		mustContain(t, out, ref+": resolved "+local, "layer-sha256:", "config-sha256:", "unpacking linux/", "done")
		if got := imageDigest(t, d.ctr("-n", "fresh", "images", "ls"), ref); got != local {
			t.Fatalf("pulled %s, pushed %s", got, local)
		}
		mustContain(t, d.ctr("-n", "fresh", "images", "check"), ref, "complete")
		mustContain(t, d.ctr("-n", "fresh", "content", "ls"), "containerd.io/distribution.source."+reg.Host+"=test/busybox")
		mustContain(t, d.ctr("-n", "fresh", "run", "--rm", ref, "pulled", "echo", "ran the pulled image"), "ran the pulled image")
	})
	t.Run("fetch does not unpack", func(t *testing.T) {
		out := d.ctr("-n", "fetched", "images", "fetch", ref)
		if strings.Contains(out, "unpacking") {
			t.Fatalf("fetch unpacked:\n%s", out)
		}
		imageDigest(t, d.ctr("-n", "fetched", "images", "ls"), ref)
	})
	t.Run("unknown tag", func(t *testing.T) {
		out, err := d.ctrErr("-n", "fresh", "images", "pull", reg.Host+"/test/busybox:nope")
		mustFail(t, out, err, "not found", "404")
	})
	t.Run("debian ctr pulls what we pushed", func(t *testing.T) {
		d.dctr("-n", "deb", "images", "pull", "--plain-http", ref)
		if got := imageDigest(t, d.dctr("-n", "deb", "images", "ls"), ref); got != local {
			t.Fatalf("debian ctr pulled %s, want %s", got, local)
		}
	})
	t.Run("debian ctr pushes, we pull", func(t *testing.T) {
		dref := reg.Host + "/test/debpushed:v2"
		d.dctr("-n", "deb", "images", "tag", ref, dref)
		d.dctr("-n", "deb", "images", "push", "--plain-http", dref)
		out := d.ctr("-n", "fromdeb", "images", "pull", dref)
		mustContain(t, out, "resolved "+local)
		mustContain(t, d.ctr("-n", "fromdeb", "run", "--rm", dref, "fromdeb", "echo", "debian pushed this"), "debian pushed this")
	})
	t.Run("cross-repository mount", func(t *testing.T) {
		proxy := newRegProxy(t, reg.Host)
		src, dst := proxy.Host()+"/test/busybox:v1", proxy.Host()+"/other/busybox:v1"
		d.ctr("-n", "mount", "images", "fetch", src)
		d.ctr("-n", "mount", "images", "tag", src, dst)
		out := d.ctr("-n", "mount", "images", "push", dst)
		mustContain(t, out, "layer-sha256:", ": exists")
		mounted := 0
		for _, l := range proxy.log() {
			if strings.HasPrefix(l, "POST /v2/other/busybox/blobs/uploads/?") && strings.Contains(l, "from=test%2Fbusybox") {
				mounted++
			}
			if strings.HasPrefix(l, "PATCH ") {
				t.Errorf("uploaded instead of mounting: %s", l)
			}
		}
		if mounted == 0 {
			t.Fatalf("no mount request:\n%s", strings.Join(proxy.log(), "\n"))
		}
	})
}

// A registry with htpasswd (Basic) auth.
func TestRegistryAuth(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	reg := startRegistry(t, registryOpts{user: "berth", password: "s3cret"})
	d := newDaemon(t, "")
	ref := reg.Host + "/private/busybox:v1"
	d.ctr("images", "import", "--no-unpack", testImageArchive(t, ref, 0))

	out, err := d.ctrErr("images", "push", ref)
	mustFail(t, out, err, "authentication required", "no credentials were given", "401", "--user")
	out, err = d.ctrErr("images", "push", "--user", "berth:wrong", ref)
	mustFail(t, out, err, `authentication as "berth" failed`, "401")
	d.ctr("images", "push", "--user", "berth:s3cret", ref)

	out, err = d.ctrErr("-n", "anon", "images", "pull", ref)
	mustFail(t, out, err, "authentication required", "401")
	// The password from standard input (no terminal to prompt on).
	out, err = d.ctrStdin("s3cret\n", "-n", "pulled", "images", "pull", "--user", "berth", ref)
	if err != nil {
		t.Fatalf("pull with password on stdin: %v\n%s", err, out)
	}
	imageDigest(t, d.ctr("-n", "pulled", "images", "ls"), ref)
	d.dctr("-n", "deb", "images", "pull", "--plain-http", "--user", "berth:s3cret", ref)
}

// A registry behind TLS with a CA made here, reached through a hosts
// directory.
func TestRegistryTLS(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	reg := startRegistry(t, registryOpts{tls: true})
	d := newDaemon(t, "")
	ref := reg.Host + "/secure/busybox:v1"
	d.ctr("images", "import", "--no-unpack", testImageArchive(t, ref, 0))

	hostsDir := t.TempDir()
	hostDir := filepath.Join(hostsDir, reg.Host)
	os.MkdirAll(hostDir, 0o755)
	writeHosts := func(s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(hostDir, "hosts.toml"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	server := fmt.Sprintf("server = %q\n", "https://"+reg.Host)

	// Loopback means plain HTTP unless the hosts file says otherwise.
	out, err := d.ctrErr("images", "push", ref)
	mustFail(t, out, err, "400")
	writeHosts(server)
	out, err = d.ctrErr("images", "push", "--hosts-dir", hostsDir, ref)
	mustFail(t, out, err, "certificate")

	writeHosts(server + fmt.Sprintf("ca = %q\n", reg.CAFile))
	d.ctr("images", "push", "--hosts-dir", hostsDir, ref)
	d.ctr("-n", "ca", "images", "pull", "--hosts-dir", hostsDir, ref)
	imageDigest(t, d.ctr("-n", "ca", "images", "ls"), ref)

	writeHosts(server + "skip_verify = true\n")
	d.ctr("-n", "skip", "images", "pull", "--hosts-dir", hostsDir, ref)

	// The registry as a mirror (a [host] table), as both ctrs read it.
	writeHosts(fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = %q\n", "https://"+reg.Host, reg.CAFile))
	d.ctr("-n", "mirror", "images", "pull", "--hosts-dir", hostsDir, ref)
	imageDigest(t, d.ctr("-n", "mirror", "images", "ls"), ref)
	d.dctr("-n", "deb", "images", "pull", "--hosts-dir", hostsDir, ref)
}

// Downloads survive a dropped connection (continued in process with a
// Range request) and an interrupted pull (continued from the ingest the
// next time).
func TestRegistryResume(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	d := newDaemon(t, "")
	ref := reg.Host + "/big/busybox:v1"
	d.ctr("images", "import", "--no-unpack", testImageArchive(t, ref, 12))
	d.ctr("images", "push", ref)
	local := imageDigest(t, d.ctr("images", "ls"), ref)
	proxy := newRegProxy(t, reg.Host)
	pref := proxy.Host() + "/big/busybox:v1"

	t.Run("connection dropped mid-blob", func(t *testing.T) {
		proxy.mu.Lock()
		proxy.dropAfter, proxy.dropTimes, proxy.reqs = 1<<20, 1, nil
		proxy.mu.Unlock()
		out := d.ctr("-n", "dropped", "images", "pull", pref)
		mustContain(t, out, "resolved "+local)
		starts := rangeStarts(proxy.log())
		if len(starts) != 1 || starts[0] <= 0 {
			t.Fatalf("want one Range request continuing the blob, got %v:\n%s", starts, strings.Join(proxy.log(), "\n"))
		}
		mustContain(t, d.ctr("-n", "dropped", "images", "check"), "complete")
	})

	t.Run("interrupted pull continues", func(t *testing.T) {
		stall := make(chan struct{})
		proxy.mu.Lock()
		proxy.stall, proxy.stallAfter, proxy.reqs = stall, 3<<20, nil
		proxy.mu.Unlock()
		out, err := d.ctrErr("-n", "interrupted", "--timeout", "5s", "images", "pull", "--max-concurrent-downloads", "1", pref)
		close(stall)
		if err == nil {
			t.Fatalf("pull through a stalled proxy succeeded:\n%s", out)
		}
		mustContain(t, d.ctr("-n", "interrupted", "content", "active"), "layer-sha256:")
		// Read from the disk, the same ingest (any namespace's).
		mustContain(t, d.ctr("content", "active", "--root", filepath.Join(d.Root, "io.containerd.content.v1.content"), "layer-sha256"), "layer-sha256:")
		out, err = d.ctrErr("content", "active", "--root", t.TempDir())
		mustFail(t, out, err, "not a content store")
		proxy.mu.Lock()
		proxy.reqs = nil
		proxy.mu.Unlock()
		out = d.ctr("-n", "interrupted", "images", "pull", pref)
		mustContain(t, out, "resolved "+local)
		starts := rangeStarts(proxy.log())
		if len(starts) != 1 || starts[0] < 1<<20 {
			t.Fatalf("want the second pull to continue the blob with a Range request, got %v:\n%s", starts, strings.Join(proxy.log(), "\n"))
		}
		if out := d.ctr("-n", "interrupted", "content", "active"); strings.Contains(out, "layer-sha256:") {
			t.Errorf("ingest left behind:\n%s", out)
		}
	})
}

// A two-platform image (an index over this host's platform and
// linux/arm64) in the registry: --all-metadata and --metadata-only fetch
// what containerd's ctr does.
func TestRegistryAllMetadata(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	reg := startRegistry(t, registryOpts{})
	d := newDaemon(t, "")
	host := platforms.Default()
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	if host.Architecture == "arm64" {
		arm.Architecture = "amd64"
	}
	// Build the index from two single-platform images.
	var idx ocispec.Index
	idx.SchemaVersion, idx.MediaType = 2, ocispec.MediaTypeImageIndex
	for i, p := range []ocispec.Platform{host, arm} {
		name := fmt.Sprintf("%s/test/part:%d", reg.Host, i)
		archive := filepath.Join(t.TempDir(), "part.tar")
		if o, err := runCmd(filepath.Join(binDir, "berth-testimage"), "-name", name, "-platform", platforms.Format(p), "-o", archive); err != nil {
			t.Fatalf("berth-testimage: %v\n%s", err, o)
		}
		d.ctr("-n", "multi", "images", "import", "--no-unpack", archive)
		dgst := imageDigest(t, d.ctr("-n", "multi", "images", "ls"), name)
		b := d.ctr("-n", "multi", "content", "get", dgst)
		pp := p
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest,
			Digest: digest.Digest(dgst), Size: int64(len(b)), Platform: &pp})
	}
	raw, _ := json.Marshal(idx)
	idxDigest := digest.FromBytes(raw)
	if out, err := d.ctrStdin(string(raw), "-n", "multi", "content", "ingest", "--expected-digest", idxDigest.String(), "--expected-size", strconv.Itoa(len(raw)), "multi-index"); err != nil {
		t.Fatalf("ingest index: %v\n%s", err, out)
	}
	// Referenced by nothing, the index is the garbage collector's until
	// labelled a root.
	d.ctr("-n", "multi", "content", "label", idxDigest.String(), "containerd.io/gc.root=test")
	ref := reg.Host + "/test/multi:1"
	d.ctr("-n", "multi", "images", "push", "--manifest", idxDigest.String(), "--manifest-type", ocispec.MediaTypeImageIndex, ref)

	blobs := func(ns string) string {
		f := strings.Fields(d.ctr("-n", ns, "content", "ls", "-q"))
		sort.Strings(f)
		return strings.Join(f, "\n")
	}
	for _, tc := range []struct {
		name  string
		args  []string
		blobs int // index, 2 manifests, 2 configs, and this platform's 1 layer or none
	}{
		{"metadata-only", []string{"content", "fetch", "--metadata-only"}, 5},
		{"all-metadata fetch", []string{"content", "fetch", "--all-metadata"}, 6},
		{"all-metadata pull", []string{"images", "pull", "--all-metadata"}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ours, theirs := "o-"+strings.ReplaceAll(tc.name, " ", "-"), "d-"+strings.ReplaceAll(tc.name, " ", "-")
			d.ctr(append(append([]string{"-n", ours}, tc.args...), ref)...)
			d.dctr(append(append([]string{"-n", theirs}, tc.args...), "--plain-http", ref)...)
			got, want := blobs(ours), blobs(theirs)
			if got != want {
				t.Errorf("blobs differ:\nours:\n%s\nDebian's:\n%s", got, want)
			}
			if n := len(strings.Fields(got)); n != tc.blobs {
				t.Errorf("%d blobs, want %d:\n%s", n, tc.blobs, got)
			}
		})
	}
	mustContain(t, d.ctr("-n", "o-all-metadata-pull", "run", "--rm", ref, "am", "echo", "all metadata, this platform's layers"), "this platform's layers")
}
