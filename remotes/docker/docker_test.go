package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/remotes"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func specsVersioned() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }

var fastRetry = RetryPolicy{Attempts: 4, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

func newTestResolver(creds CredentialsFunc) *Resolver {
	return NewResolver(Options{Credentials: creds, Retry: fastRetry})
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func readAll(t *testing.T, f remotes.Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	t.Helper()
	rc, err := f.Fetch(context.Background(), desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestResolve(t *testing.T) {
	reg := newFakeRegistry(t)
	m, _, _ := reg.addImage("library/busybox", "latest", randomBytes(100))
	idx, _ := json.Marshal(ocispec.Index{Versioned: specsVersioned(), MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{m}})
	idxDesc := reg.addManifest("multi", "v1", ocispec.MediaTypeImageIndex, idx)
	docker := []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"` + digest.FromString("x").String() + `","size":1},"layers":[]}`)
	dockerDesc := reg.addManifest("dockerimg", "1", "application/vnd.docker.distribution.manifest.v2+json", docker)
	h := reg.host()

	for _, tc := range []struct {
		name    string
		ref     string
		noHead  bool
		lie     digest.Digest
		want    ocispec.Descriptor
		wantErr string
		kind    error
	}{
		{name: "tag", ref: h + "/library/busybox:latest", want: m},
		{name: "digest", ref: h + "/library/busybox@" + m.Digest.String(), want: m},
		{name: "tag and digest", ref: h + "/library/busybox:latest@" + m.Digest.String(), want: m},
		{name: "index", ref: h + "/multi:v1", want: idxDesc},
		{name: "docker media type", ref: h + "/dockerimg:1", want: dockerDesc},
		{name: "no HEAD", ref: h + "/library/busybox:latest", noHead: true, want: m},
		{name: "unknown tag", ref: h + "/library/busybox:nope", wantErr: "not found", kind: errdefs.ErrNotFound},
		{name: "unknown repo", ref: h + "/nothing:latest", kind: errdefs.ErrNotFound},
		{name: "wrong digest header", ref: h + "/library/busybox:latest", lie: digest.FromString("lie"),
			wantErr: "content has digest " + m.Digest.String() + ", expected " + digest.FromString("lie").String(), kind: errdefs.ErrFailedPrecondition},
		{name: "body does not match ref digest", ref: h + "/library/busybox@" + digest.FromString("other").String(),
			kind: errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg.noHead, reg.lie = tc.noHead, tc.lie
			defer func() { reg.noHead, reg.lie = false, "" }()
			name, desc, err := newTestResolver(nil).Resolve(context.Background(), tc.ref)
			if tc.kind != nil || tc.wantErr != "" {
				if err == nil {
					t.Fatalf("resolved %v, want error", desc)
				}
				if tc.kind != nil && !errors.Is(err, tc.kind) {
					t.Errorf("error %v is not %v", err, tc.kind)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not say %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != tc.want.Digest || desc.Size != tc.want.Size || desc.MediaType != tc.want.MediaType {
				t.Errorf("got %+v, want %+v", desc, tc.want)
			}
			if !strings.HasPrefix(name, h+"/") {
				t.Errorf("name %q", name)
			}
		})
	}
}

// A registry that serves a body not matching the digest asked for.
func TestResolveDigestMismatch(t *testing.T) {
	reg := newFakeRegistry(t)
	m, _, _ := reg.addImage("x", "latest", randomBytes(10))
	wrong := digest.FromString("wrong")
	// Serve m's body under the wrong digest.
	reg.manifests["x"][wrong.String()] = reg.manifests["x"][m.Digest.String()]
	_, _, err := newTestResolver(nil).Resolve(context.Background(), reg.host()+"/x@"+wrong.String())
	if err == nil || !strings.Contains(err.Error(), wrong.String()) || !strings.Contains(err.Error(), m.Digest.String()) {
		t.Fatalf("want an error naming both digests, got %v", err)
	}
}

func TestFetch(t *testing.T) {
	reg := newFakeRegistry(t)
	layer := randomBytes(300 << 10)
	m, cfg, l := reg.addImage("app", "latest", layer)
	r := newTestResolver(nil)
	ctx := context.Background()
	if _, _, err := r.Resolve(ctx, reg.host()+"/app:latest"); err != nil {
		t.Fatal(err)
	}
	f, err := r.Fetcher(ctx, reg.host()+"/app:latest")
	if err != nil {
		t.Fatal(err)
	}
	// The manifest comes from the resolve cache.
	before := reg.count("GET /v2/app/manifests/")
	if _, err := readAll(t, f, m); err != nil {
		t.Fatal(err)
	}
	if reg.count("GET /v2/app/manifests/") != before {
		t.Error("manifest fetched again right after resolving")
	}
	for _, tc := range []struct {
		name    string
		desc    ocispec.Descriptor
		want    []byte
		wantErr string
		kind    error
	}{
		{name: "layer", desc: l, want: layer},
		{name: "config", desc: cfg},
		{name: "unknown", desc: ocispec.Descriptor{MediaType: l.MediaType, Digest: digest.FromString("nope"), Size: 4}, kind: errdefs.ErrNotFound},
		{name: "size too small", desc: ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size - 1}, wantErr: "descriptor says", kind: errdefs.ErrFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, f, tc.desc)
			if tc.kind != nil {
				if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %v mentioning %q", err, tc.kind, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !bytes.Equal(got, tc.want) {
				t.Error("content differs")
			}
		})
	}
}

// The registry serves other bytes than the digest says: the reader fails
// naming the digest.
func TestFetchWrongContent(t *testing.T) {
	reg := newFakeRegistry(t)
	l := reg.addBlob("x", []byte("hello"))
	reg.blobs["x"][l.Digest] = []byte("jello")
	f, _ := newTestResolver(nil).Fetcher(context.Background(), reg.host()+"/x:latest")
	_, err := readAll(t, f, l)
	if err == nil || !strings.Contains(err.Error(), l.Digest.String()) || !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("got %v", err)
	}
}

func TestResumeAfterDroppedConnection(t *testing.T) {
	reg := newFakeRegistry(t)
	layer := randomBytes(1 << 20)
	l := reg.addBlob("x", layer)
	for _, tc := range []struct {
		name    string
		drops   int
		wantErr bool
	}{
		{name: "once", drops: 1},
		{name: "three times", drops: 3},
		{name: "always", drops: 100, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg.mu.Lock()
			reg.dropAfter, reg.dropCount, reg.requests = 100<<10, tc.drops, nil
			reg.mu.Unlock()
			f, _ := newTestResolver(nil).Fetcher(context.Background(), reg.host()+"/x:latest")
			got, err := readAll(t, f, l)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "connection broke") {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, layer) {
				t.Fatal("content differs")
			}
			if n := reg.count("GET /v2/x/blobs/" + l.Digest.String() + " bytes="); n != tc.drops {
				t.Errorf("%d range requests, want %d: %v", n, tc.drops, reg.log())
			}
		})
	}
}

func TestFetchFromOffset(t *testing.T) {
	reg := newFakeRegistry(t)
	layer := randomBytes(5000)
	l := reg.addBlob("x", layer)
	f, _ := newTestResolver(nil).Fetcher(context.Background(), reg.host()+"/x:latest")
	rc, err := f.(remotes.RangeFetcher).FetchFrom(context.Background(), l, 1234)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, layer[1234:]) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	if reg.count("GET /v2/x/blobs/"+l.Digest.String()+" bytes=1234-") != 1 {
		t.Errorf("no range request: %v", reg.log())
	}
}

func TestRetry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		code  int
		fails int
		ok    bool
	}{
		{name: "503 then success", code: 503, fails: 2, ok: true},
		{name: "429 then success", code: 429, fails: 1, ok: true},
		{name: "503 until out of attempts", code: 503, fails: 10},
		{name: "404 is not retried", code: 404, fails: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFakeRegistry(t)
			reg.addImage("x", "latest", []byte("layer"))
			reg.failPath, reg.failCount, reg.failCode = "/manifests/", tc.fails, tc.code
			_, _, err := newTestResolver(nil).Resolve(context.Background(), reg.host()+"/x:latest")
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("resolved")
			}
			if tc.code == 503 {
				if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "503") {
					t.Errorf("got %v", err)
				}
				if n := reg.count("HEAD "); n != fastRetry.Attempts {
					t.Errorf("%d tries, want %d", n, fastRetry.Attempts)
				}
			}
		})
	}
}

func TestRetryBrokenConnection(t *testing.T) {
	reg := newFakeRegistry(t)
	m, _, _ := reg.addImage("x", "latest", []byte("layer"))
	closed := 0
	// A proxy that hangs up on the first two connections.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if closed < 2 {
			closed++
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
			return
		}
		reg.ServeHTTP(w, req)
	}))
	defer proxy.Close()
	_, desc, err := newTestResolver(nil).Resolve(context.Background(), strings.TrimPrefix(proxy.URL, "http://")+"/x:latest")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != m.Digest {
		t.Fatal("wrong digest")
	}
}

func TestAuth(t *testing.T) {
	for _, tc := range []struct {
		name       string
		scheme     string
		user, pass string // server's
		creds      [2]string
		wantErr    string
	}{
		{name: "bearer anonymous", scheme: "bearer"},
		{name: "bearer with credentials", scheme: "bearer", user: "bob", pass: "pw", creds: [2]string{"bob", "pw"}},
		{name: "bearer bad credentials", scheme: "bearer", user: "bob", pass: "pw", creds: [2]string{"bob", "wrong"},
			wantErr: `credentials for user "bob" rejected`},
		{name: "bearer credentials needed", scheme: "bearer", user: "bob", pass: "pw",
			wantErr: "anonymous access refused, credentials needed"},
		{name: "basic", scheme: "basic", user: "bob", pass: "pw", creds: [2]string{"bob", "pw"}},
		{name: "basic bad credentials", scheme: "basic", user: "bob", pass: "pw", creds: [2]string{"bob", "wrong"},
			wantErr: `authentication as "bob" failed`},
		{name: "basic without credentials", scheme: "basic", user: "bob", pass: "pw",
			wantErr: "no credentials were given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFakeRegistry(t)
			layer := randomBytes(1000)
			_, _, l := reg.addImage("team/app", "latest", layer)
			reg.auth, reg.user, reg.pass = tc.scheme, tc.user, tc.pass
			var creds CredentialsFunc
			if tc.creds[0] != "" {
				creds = func(host string) (string, string, error) {
					if host != reg.host() {
						t.Errorf("credentials asked for %q", host)
					}
					return tc.creds[0], tc.creds[1], nil
				}
			}
			r := newTestResolver(creds)
			ctx := context.Background()
			_, _, err := r.Resolve(ctx, reg.host()+"/team/app:latest")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, remotes.ErrUnauthorized) {
					t.Fatalf("got %v, want unauthorized error saying %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "401") {
					t.Errorf("error %q does not give the status", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f, _ := r.Fetcher(ctx, reg.host()+"/team/app:latest")
			for i := 0; i < 3; i++ {
				got, err := readAll(t, f, l)
				if err != nil || !bytes.Equal(got, layer) {
					t.Fatalf("fetch: %v", err)
				}
			}
			if tc.scheme == "bearer" && reg.tokenCalls != 1 {
				t.Errorf("token endpoint called %d times, want 1 (cached per scope)", reg.tokenCalls)
			}
		})
	}
}

func TestChallengeParsing(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []challenge
	}{
		{[]string{`Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"`},
			[]challenge{{"bearer", map[string]string{"realm": "https://auth.example.com/token", "service": "registry.example.com", "scope": "repository:a/b:pull"}}}},
		{[]string{`Basic realm="x"`, `Bearer realm="y", service=svc`},
			[]challenge{{"basic", map[string]string{"realm": "x"}}, {"bearer", map[string]string{"realm": "y", "service": "svc"}}}},
		{[]string{`Basic realm="a\"b", Bearer realm="c"`},
			[]challenge{{"basic", map[string]string{"realm": `a"b`}}, {"bearer", map[string]string{"realm": "c"}}}},
		{[]string{`Negotiate`}, []challenge{{"negotiate", map[string]string{}}}},
		{[]string{``}, nil},
	} {
		got := parseChallenges(tc.in)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(tc.want)
		if len(got) != len(tc.want) || string(gb) != string(wb) {
			// challenge has unexported fields; compare by hand.
			if len(got) != len(tc.want) {
				t.Errorf("%q: got %d challenges %+v, want %+v", tc.in, len(got), got, tc.want)
				continue
			}
		}
		for i := range got {
			if got[i].scheme != tc.want[i].scheme || len(got[i].params) != len(tc.want[i].params) {
				t.Errorf("%q: got %+v, want %+v", tc.in, got[i], tc.want[i])
				continue
			}
			for k, v := range tc.want[i].params {
				if got[i].params[k] != v {
					t.Errorf("%q: param %s = %q, want %q", tc.in, k, got[i].params[k], v)
				}
			}
		}
	}
}

func TestPush(t *testing.T) {
	reg := newFakeRegistry(t)
	ctx := context.Background()
	r := newTestResolver(nil)
	layer := randomBytes(200 << 10)
	ld := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(layer), Size: int64(len(layer))}
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	mb, _ := json.Marshal(ocispec.Manifest{Versioned: specsVersioned(), MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}})
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}

	p, err := r.Pusher(ctx, reg.host()+"/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		d ocispec.Descriptor
		p []byte
	}{{ld, layer}, {cd, cfg}, {md, mb}} {
		if err := p.Push(ctx, b.d, bytes.NewReader(b.p)); err != nil {
			t.Fatalf("push %s: %v", b.d.Digest, err)
		}
	}
	if err := p.Tag(ctx, md, bytes.NewReader(mb)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reg.blobs["team/app"][ld.Digest], layer) {
		t.Fatal("layer not stored")
	}
	if reg.count("PATCH /v2/team/app/blobs/uploads/") != 2 || reg.count("PUT /v2/team/app/manifests/v1") != 1 {
		t.Errorf("unexpected requests: %v", reg.log())
	}

	// Pushing again finds everything there.
	if err := p.Push(ctx, ld, bytes.NewReader(layer)); !errdefs.IsAlreadyExists(err) {
		t.Errorf("second push: %v, want AlreadyExists", err)
	}
	if err := p.Push(ctx, md, bytes.NewReader(mb)); !errdefs.IsAlreadyExists(err) {
		t.Errorf("second manifest push: %v, want AlreadyExists", err)
	}

	// Into another repository, the layer is mounted from its source.
	p2, _ := r.Pusher(ctx, reg.host()+"/other/app:v1")
	src := ld
	src.Annotations = map[string]string{remotes.LabelDistributionSource + reg.host(): "team/app"}
	if err := p2.Push(ctx, src, bytes.NewReader(layer)); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("mount: %v, want AlreadyExists", err)
	}
	if reg.count("POST /v2/other/app/blobs/uploads/?from=team%2Fapp&mount="+strings.Replace(ld.Digest.String(), ":", "%3A", 1)) != 1 {
		t.Errorf("no mount request: %v", reg.log())
	}
	if !bytes.Equal(reg.blobs["other/app"][ld.Digest], layer) {
		t.Error("layer not mounted")
	}

	// A push whose content does not match is refused by the registry.
	bad := ocispec.Descriptor{MediaType: ld.MediaType, Digest: digest.FromString("x"), Size: 3}
	if err := p.Push(ctx, bad, strings.NewReader("abc")); err == nil || !strings.Contains(err.Error(), "DIGEST_INVALID") {
		t.Errorf("bad push: %v", err)
	}
}

func TestPushRetriesUpload(t *testing.T) {
	reg := newFakeRegistry(t)
	ctx := context.Background()
	layer := randomBytes(10 << 10)
	ld := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(layer), Size: int64(len(layer))}
	reg.failPath, reg.failCount, reg.failCode = "/blobs/uploads/", 2, 503
	p, _ := newTestResolver(nil).Pusher(ctx, reg.host()+"/x:v1")
	if err := p.Push(ctx, ld, bytes.NewReader(layer)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reg.blobs["x"][ld.Digest], layer) {
		t.Fatal("not stored")
	}
}

func TestConfigureHosts(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		p = filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docker.io/hosts.toml", `
server = "https://registry-1.docker.io"
[host."https://mirror-b.example.com"]
  capabilities = ["pull"]
  skip_verify = true
[host."http://mirror-a.example.com:5000/prefix"]
  capabilities = ["pull", "resolve"]
  [host."http://mirror-a.example.com:5000/prefix".header]
    x-one = "1"
    x-two = ["a", "b"]
[host."https://raw.example.com/api"]
  override_path = true
`)
	write("example.com/hosts.toml", `
ca = "ca.pem"
skip_verify = false
[header]
  x-mine = "yes"
`)
	write("bad.com/hosts.toml", `[host."https://m"]
capabilities = ["fly"]
`)
	write("unknown.com/hosts.toml", `colour = "blue"`)
	write("localhost:5000/hosts.toml", `
host."https://first.example.com".capabilities = ["pull"]
[host."https://second.example.com"]
`)
	for _, tc := range []struct {
		domain  string
		plain   bool
		want    []string // scheme://host/path caps
		wantErr string
	}{
		{domain: "docker.io", want: []string{
			"https://mirror-b.example.com/v2 pull",
			"http://mirror-a.example.com:5000/prefix/v2 pull,resolve",
			"https://raw.example.com/api pull,resolve",
			"https://registry-1.docker.io/v2 pull,resolve,push",
		}},
		{domain: "quay.io", want: []string{"https://quay.io/v2 pull,resolve,push"}},
		{domain: "quay.io", plain: true, want: []string{"http://quay.io/v2 pull,resolve,push"}},
		{domain: "localhost:5000", want: []string{
			"https://first.example.com/v2 pull",
			"https://second.example.com/v2 pull,resolve",
			"http://localhost:5000/v2 pull,resolve,push",
		}},
		{domain: "127.0.0.1:1234", want: []string{"http://127.0.0.1:1234/v2 pull,resolve,push"}},
		{domain: "[::1]:1234", want: []string{"http://[::1]:1234/v2 pull,resolve,push"}},
		{domain: "example.com", wantErr: "ca.pem"},
		{domain: "bad.com", wantErr: `unknown capability "fly"`},
		{domain: "unknown.com", wantErr: "colour"},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			hosts, err := ConfigureHosts(HostOptions{HostDir: dir, PlainHTTP: tc.plain})(tc.domain)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want error about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, h := range hosts {
				got = append(got, h.Scheme+"://"+h.Host+h.Path+" "+h.Capabilities.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if tc.domain == "docker.io" {
				if hosts[1].Header.Get("x-one") != "1" || len(hosts[1].Header.Values("x-two")) != 2 {
					t.Errorf("headers %v", hosts[1].Header)
				}
				tr := hosts[0].Client.Transport.(*http.Transport)
				if !tr.TLSClientConfig.InsecureSkipVerify {
					t.Error("skip_verify not applied")
				}
			}
		})
	}
}

// A registry behind TLS with a private CA, reached through hosts.toml's ca.
func TestTLSWithHostsDirCA(t *testing.T) {
	reg := newFakeRegistry(t)
	m, _, _ := reg.addImage("x", "latest", []byte("layer"))
	tlsSrv := httptest.NewUnstartedServer(reg)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake error
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	host := strings.TrimPrefix(tlsSrv.URL, "https://")
	// Name it something not local so https is the default.
	domain := "registry.test:443"
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, domain), 0o755)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	os.WriteFile(filepath.Join(dir, domain, "ca.crt"), ca, 0o644)

	for _, tc := range []struct {
		name    string
		hosts   string
		wantErr string
	}{
		{name: "ca", hosts: `server = "https://` + host + `"` + "\nca = \"ca.crt\"\n"},
		{name: "skip verify", hosts: `server = "https://` + host + `"` + "\nskip_verify = true\n"},
		{name: "untrusted", hosts: `server = "https://` + host + `"` + "\n", wantErr: "certificate"},
		{name: "mirror with ca", hosts: `[host."https://` + host + `"]` + "\nca = \"ca.crt\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, domain, "hosts.toml"), []byte(tc.hosts), 0o644)
			r := NewResolver(Options{Hosts: ConfigureHosts(HostOptions{HostDir: dir}), Retry: RetryPolicy{Attempts: 1}})
			_, desc, err := r.Resolve(context.Background(), domain+"/x:latest")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v", err)
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
