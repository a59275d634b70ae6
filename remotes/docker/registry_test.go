package docker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeRegistry is a small in-memory OCI distribution server with knobs
// for the failures the client must survive.
type fakeRegistry struct {
	t  *testing.T
	mu sync.Mutex
	// blobs and manifests by repository, then digest (manifests also by tag).
	blobs     map[string]map[digest.Digest][]byte
	manifests map[string]map[string]manifestEntry
	uploads   map[string]*upload

	// auth: "" none, "basic", "bearer".
	auth       string
	user, pass string
	// bearer tokens handed out, and how often the token endpoint was hit.
	tokens     map[string]bool
	tokenCalls int
	// refresh, when set, is the OAuth2 refresh token POST /token accepts.
	refresh string

	// failures: the next N requests matching a path part get this status.
	failPath  string
	failCount int
	failCode  int
	// dropAfter: GET of blob bodies breaks the connection after this
	// many bytes, dropCount times.
	dropAfter int
	dropCount int
	// lie: Docker-Content-Digest sent for manifests, when set.
	lie digest.Digest
	// noHead: answer HEAD with 405.
	noHead bool

	// log of requests: "METHOD path?query range".
	requests []string
	srv      *httptest.Server
}

type manifestEntry struct {
	mt   string
	body []byte
}

type upload struct {
	repo string
	data []byte
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	r := &fakeRegistry{
		t:         t,
		blobs:     map[string]map[digest.Digest][]byte{},
		manifests: map[string]map[string]manifestEntry{},
		uploads:   map[string]*upload{},
		tokens:    map[string]bool{},
	}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

// host is the registry's host:port (127.0.0.1, so plain HTTP by default).
func (r *fakeRegistry) host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

func (r *fakeRegistry) addBlob(repo string, p []byte) ocispec.Descriptor {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := digest.FromBytes(p)
	if r.blobs[repo] == nil {
		r.blobs[repo] = map[digest.Digest][]byte{}
	}
	r.blobs[repo][d] = p
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(p))}
}

func (r *fakeRegistry) addManifest(repo, tag, mt string, p []byte) ocispec.Descriptor {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := digest.FromBytes(p)
	if r.manifests[repo] == nil {
		r.manifests[repo] = map[string]manifestEntry{}
	}
	r.manifests[repo][d.String()] = manifestEntry{mt, p}
	if tag != "" {
		r.manifests[repo][tag] = manifestEntry{mt, p}
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(p))}
}

// addImage stores a one-layer image and returns its manifest descriptor.
func (r *fakeRegistry) addImage(repo, tag string, layer []byte) (manifest, config, layerDesc ocispec.Descriptor) {
	layerDesc = r.addBlob(repo, layer)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + digest.FromBytes(layer).String() + `"]}}`)
	config = r.addBlob(repo, cfg)
	config.MediaType = ocispec.MediaTypeImageConfig
	m, _ := json.Marshal(ocispec.Manifest{
		Versioned: specsVersioned(),
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layerDesc},
	})
	manifest = r.addManifest(repo, tag, ocispec.MediaTypeImageManifest, m)
	return manifest, config, layerDesc
}

func (r *fakeRegistry) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...)
}

func (r *fakeRegistry) count(prefix string) int {
	n := 0
	for _, l := range r.log() {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func writeErr(w http.ResponseWriter, code int, ecode, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, ecode, msg)
}

func (r *fakeRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	entry := req.Method + " " + req.URL.Path
	if req.URL.RawQuery != "" {
		entry += "?" + req.URL.RawQuery
	}
	if rg := req.Header.Get("Range"); rg != "" {
		entry += " " + rg
	}
	r.requests = append(r.requests, entry)
	if r.failCount > 0 && strings.Contains(req.URL.Path, r.failPath) {
		r.failCount--
		code := r.failCode
		r.mu.Unlock()
		w.Header().Set("Retry-After", "0")
		writeErr(w, code, "UNAVAILABLE", "try again")
		return
	}
	r.mu.Unlock()

	if req.URL.Path == "/token" {
		r.serveToken(w, req)
		return
	}
	if !r.authorized(w, req) {
		return
	}
	if req.URL.Path == "/v2/" {
		w.WriteHeader(http.StatusOK)
		return
	}
	path := strings.TrimPrefix(req.URL.Path, "/v2/")
	switch {
	case strings.Contains(path, "/blobs/uploads/"):
		i := strings.Index(path, "/blobs/uploads/")
		r.serveUpload(w, req, path[:i], path[i+len("/blobs/uploads/"):])
	case strings.Contains(path, "/blobs/"):
		i := strings.Index(path, "/blobs/")
		r.serveBlob(w, req, path[:i], digest.Digest(path[i+len("/blobs/"):]))
	case strings.Contains(path, "/manifests/"):
		i := strings.Index(path, "/manifests/")
		r.serveManifest(w, req, path[:i], path[i+len("/manifests/"):])
	default:
		writeErr(w, http.StatusNotFound, "NAME_UNKNOWN", "no such route")
	}
}

func (r *fakeRegistry) authorized(w http.ResponseWriter, req *http.Request) bool {
	switch r.auth {
	case "basic":
		u, p, ok := req.BasicAuth()
		if ok && u == r.user && p == r.pass {
			return true
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
		writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return false
	case "bearer":
		tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		r.mu.Lock()
		valid := ok && r.tokens[tok]
		r.mu.Unlock()
		if valid {
			return true
		}
		scope := ""
		if parts := strings.SplitN(strings.TrimPrefix(req.URL.Path, "/v2/"), "/blobs/", 2); len(parts) == 2 {
			scope = "repository:" + parts[0] + ":pull"
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="fake",scope="%s"`, r.srv.URL, scope))
		writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return false
	}
	return true
}

func (r *fakeRegistry) serveToken(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.tokenCalls++
	r.mu.Unlock()
	if req.Method == http.MethodPost {
		if r.refresh == "" {
			http.Error(w, "no POST", http.StatusMethodNotAllowed)
			return
		}
		if req.PostFormValue("service") != "fake" || req.PostFormValue("grant_type") != "refresh_token" || req.PostFormValue("client_id") == "" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if req.PostFormValue("refresh_token") != r.refresh {
			writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad refresh token")
			return
		}
		var b [8]byte
		rand.Read(b[:])
		tok := hex.EncodeToString(b[:])
		r.mu.Lock()
		r.tokens[tok] = true
		r.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": 300, "scope": req.PostFormValue("scope")})
		return
	}
	if req.URL.Query().Get("service") != "fake" {
		http.Error(w, "bad service", http.StatusBadRequest)
		return
	}
	if u, p, ok := req.BasicAuth(); ok || r.user != "" {
		if !ok || u != r.user || p != r.pass {
			writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad credentials")
			return
		}
	}
	var b [8]byte
	rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	r.mu.Lock()
	r.tokens[tok] = true
	r.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
}

func (r *fakeRegistry) serveManifest(w http.ResponseWriter, req *http.Request, repo, ref string) {
	switch req.Method {
	case http.MethodHead, http.MethodGet:
		if req.Method == http.MethodHead && r.noHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		r.mu.Lock()
		m, ok := r.manifests[repo][ref]
		lie := r.lie
		r.mu.Unlock()
		if !ok {
			writeErr(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		d := digest.FromBytes(m.body)
		if lie != "" {
			d = lie
		}
		w.Header().Set("Docker-Content-Digest", d.String())
		w.Header().Set("Content-Type", m.mt)
		w.Header().Set("Content-Length", strconv.Itoa(len(m.body)))
		if req.Method == http.MethodGet {
			w.Write(m.body)
		}
	case http.MethodPut:
		b, _ := io.ReadAll(req.Body)
		d := r.addManifest(repo, "", req.Header.Get("Content-Type"), b)
		if !strings.HasPrefix(ref, "sha256:") {
			r.addManifest(repo, ref, req.Header.Get("Content-Type"), b)
		} else if digest.Digest(ref) != d.Digest {
			writeErr(w, http.StatusBadRequest, "DIGEST_INVALID", "digest mismatch")
			return
		}
		w.Header().Set("Docker-Content-Digest", d.Digest.String())
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (r *fakeRegistry) serveBlob(w http.ResponseWriter, req *http.Request, repo string, d digest.Digest) {
	r.mu.Lock()
	p, ok := r.blobs[repo][d]
	drop := 0
	if r.dropCount > 0 && req.Method == http.MethodGet {
		r.dropCount--
		drop = r.dropAfter
	}
	r.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
		return
	}
	start := 0
	if rg := req.Header.Get("Range"); rg != "" {
		s := strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-")
		start, _ = strconv.Atoi(s)
		if start > len(p) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", strconv.Itoa(len(p)-start))
	if start > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(p)-1, len(p)))
		w.WriteHeader(http.StatusPartialContent)
	}
	if req.Method == http.MethodHead {
		return
	}
	body := p[start:]
	if drop > 0 && drop < len(body) {
		w.Write(body[:drop])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Write(body)
}

func (r *fakeRegistry) serveUpload(w http.ResponseWriter, req *http.Request, repo, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch req.Method {
	case http.MethodPost:
		q := req.URL.Query()
		if m, from := q.Get("mount"), q.Get("from"); m != "" && from != "" {
			if p, ok := r.blobs[from][digest.Digest(m)]; ok {
				if r.blobs[repo] == nil {
					r.blobs[repo] = map[digest.Digest][]byte{}
				}
				r.blobs[repo][digest.Digest(m)] = p
				w.WriteHeader(http.StatusCreated)
				return
			}
		}
		var b [8]byte
		rand.Read(b[:])
		id := base64.RawURLEncoding.EncodeToString(b[:])
		r.uploads[id] = &upload{repo: repo}
		w.Header().Set("Location", "/v2/"+repo+"/blobs/uploads/"+id+"?_state=secret")
		w.WriteHeader(http.StatusAccepted)
	case http.MethodPatch:
		u := r.uploads[id]
		if u == nil {
			writeErr(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "upload unknown")
			return
		}
		b, _ := io.ReadAll(req.Body)
		u.data = append(u.data, b...)
		w.Header().Set("Location", "/v2/"+repo+"/blobs/uploads/"+id+"?_state=next")
		w.Header().Set("Range", fmt.Sprintf("0-%d", len(u.data)-1))
		w.WriteHeader(http.StatusAccepted)
	case http.MethodPut:
		u := r.uploads[id]
		if u == nil {
			writeErr(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "upload unknown")
			return
		}
		b, _ := io.ReadAll(req.Body)
		u.data = append(u.data, b...)
		d := digest.Digest(req.URL.Query().Get("digest"))
		if digest.FromBytes(u.data) != d {
			writeErr(w, http.StatusBadRequest, "DIGEST_INVALID", "digest mismatch")
			return
		}
		if r.blobs[repo] == nil {
			r.blobs[repo] = map[digest.Digest][]byte{}
		}
		r.blobs[repo][d] = u.data
		delete(r.uploads, id)
		w.Header().Set("Docker-Content-Digest", d.String())
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}
